"""Dead deliveries for the operator: list, show and replay them, from the CLI or the admin API.

A dead letter here is a delivery the couriers gave up on (state `dead`), named by its delivery
id. Replay makes it pending again, due at once, with the same message id, so the partner can
dedup on `webhook-id` a message it had in fact received. A running gateway picks a replay up
within `DEFAULT_IDLE_WAIT_S` (actors/delivery) even when the replay was made by another process
(the CLI), because every courier looks at the store at least that often; a replay made through
the admin API also wakes the couriers at once.

Other dead letters (an actor's poison message, an unroutable relay publish) stay in the store's
`dead_letters` table (`Store.dead_letters`) and are not replayed from here.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import msgspec
import orjson

from canonical.delivery import DeliveryRecord
from canonical.errors import ConfigError, GatewayError
from gateway.config import load_config
from gateway.store import Store
from protocols.http.routing import BadRequest, NotFound

__all__ = [
    "DEFAULT_LIST_LIMIT",
    "DeadLetterFilter",
    "dead_letter_line",
    "list_dead_letters",
    "parse_time",
    "replay_dead_letters",
    "run_dead_letters_command",
    "show_dead_letter",
    "summary",
]

# Dead letters one list returns unless told otherwise; page on with `after`.
DEFAULT_LIST_LIMIT = 100
MAX_LIST_LIMIT = 10_000


class DeadLetterFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Which dead deliveries: every field given must match; `since`/`until` bound their death."""

    partner_id: str | None = None
    document_type: str | None = None
    since: float | None = None  # unix seconds, inclusive
    until: float | None = None  # unix seconds, exclusive

    def is_empty(self) -> bool:
        return all(v is None for v in msgspec.structs.astuple(self))


def parse_time(text: str, name: str) -> float:
    """Return an ISO 8601 time as unix seconds (UTC when it names no zone); 400 if unreadable."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"{name}: expected an ISO 8601 time, got {text[:40]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


async def list_dead_letters(
    store: Store, filters: DeadLetterFilter, *, after: int = 0, limit: int = DEFAULT_LIST_LIMIT
) -> list[DeliveryRecord]:
    """Return dead deliveries matching `filters`, in id order, after the id `after`."""
    return await store.deliveries.dead(
        partner_id=filters.partner_id,
        document_type=filters.document_type,
        since=filters.since,
        until=filters.until,
        after_id=after,
        limit=max(1, min(limit, MAX_LIST_LIMIT)),
    )


async def show_dead_letter(store: Store, delivery_id: int) -> dict[str, Any]:
    """Return one dead delivery with every attempt, as JSON-able values; NotFound if none."""
    found = await store.deliveries.deliveries(after_id=delivery_id - 1, limit=1)
    if not found or found[0].id != delivery_id or found[0].state != "dead":
        raise NotFound(f"no dead delivery {delivery_id}")
    delivery = found[0]
    attempts = await store.deliveries.attempts(delivery_id)
    return {
        **summary(delivery),
        "aggregate_key": delivery.aggregate_key,
        "correlation_id": delivery.correlation_id,
        "created_at": _iso(delivery.created_at),
        "body": _body(delivery.body),
        "attempt_log": [
            {
                "attempted_at": _iso(a.attempted_at),
                "status": a.status,
                "latency_s": round(a.latency_s, 6),
                "error": a.error,
                "response_head": a.response_head.decode("utf-8", "replace"),
            }
            for a in attempts
        ],
    }


async def replay_dead_letters(
    store: Store, *, delivery_id: int | None = None, filters: DeadLetterFilter | None = None
) -> int:
    """Make one dead delivery (by id) or every one matching `filters` pending again.

    Returns how many were replayed. Refuses (BadRequest) neither an id nor any filter: replaying
    everything that ever died is too big a step to take by leaving the filters out.
    """
    if delivery_id is not None:
        if filters is not None and not filters.is_empty():
            raise BadRequest("give either an id or filters, not both")
        return int(await store.deliveries.replay_delivery(delivery_id))
    if filters is None or filters.is_empty():
        raise BadRequest("give a dead letter id, or at least one filter (partner, document, ...)")
    return await store.deliveries.replay_deliveries(
        partner_id=filters.partner_id,
        document_type=filters.document_type,
        since=filters.since,
        until=filters.until,
    )


def dead_letter_line(delivery: DeliveryRecord) -> str:
    """One dead delivery on one line: id, when it died, partner, document, message id, why."""
    died = _iso(delivery.settled_at) if delivery.settled_at is not None else "-"
    return (
        f"{delivery.id}\t{died}\t{delivery.partner_id}\t{delivery.document_type}\t"
        f"{delivery.message_id}\tattempts={delivery.attempts}\t{delivery.reason or ''}"
    )


def summary(delivery: DeliveryRecord) -> dict[str, Any]:
    """One dead delivery as JSON-able values, without its body and attempts."""
    return {
        "id": delivery.id,
        "partner_id": delivery.partner_id,
        "message_id": delivery.message_id,
        "document_type": delivery.document_type,
        "state": delivery.state,
        "attempts": delivery.attempts,
        "died_at": _iso(delivery.settled_at) if delivery.settled_at is not None else None,
        "reason": delivery.reason,
    }


def _iso(unix: float) -> str:
    return dt.datetime.fromtimestamp(unix, dt.UTC).isoformat()


def _body(body: bytes) -> Any:
    """The body as JSON when it is JSON (envelopes are), else as text."""
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace")
    return orjson.Fragment(body)


def run_dead_letters_command(
    action: str,
    config_path: Path,
    environ: Mapping[str, str],
    *,
    delivery_id: int | None = None,
    partner: str | None = None,
    document: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int = DEFAULT_LIST_LIMIT,
) -> int:
    """The `gateway dead-letters list|show|replay` command, on the config's store file.

    Opens the store directly, so no gateway needs to be running; a running one notices a replay
    within its couriers' idle wait. Prints one line per dead letter (list), JSON (show) or how
    many were replayed (replay); returns the exit code.
    """
    try:
        config = load_config(config_path, environ)
        filters = DeadLetterFilter(
            partner_id=partner,
            document_type=document,
            since=parse_time(since, "--since") if since else None,
            until=parse_time(until, "--until") if until else None,
        )
    except ConfigError as exc:
        for error in exc.errors:
            print(error.message, file=sys.stderr)
        return 1
    except BadRequest as exc:
        print(exc.detail, file=sys.stderr)
        return 2

    async def run() -> int:
        async with Store(config.store.path, synchronous=config.store.synchronous) as store:
            # Answered inside the block: the store's task group would wrap what escapes it.
            try:
                await _act(store, action, delivery_id, filters, limit)
            except NotFound as exc:
                print(exc.detail, file=sys.stderr)
                return 1
            except GatewayError as exc:
                print(exc.detail, file=sys.stderr)
                return 2
            return 0

    if not Path(config.store.path).exists():
        print(f"no store at {config.store.path}", file=sys.stderr)
        return 1
    return anyio.run(run)


async def _act(
    store: Store, action: str, delivery_id: int | None, filters: DeadLetterFilter, limit: int
) -> None:
    """Do one CLI action on an open store and print its outcome."""
    if action == "list":
        for delivery in await list_dead_letters(store, filters, limit=limit):
            print(dead_letter_line(delivery))
    elif action == "show":
        if delivery_id is None:
            raise BadRequest("show: give the dead letter's id")
        shown = await show_dead_letter(store, delivery_id)
        print(orjson.dumps(shown, option=orjson.OPT_INDENT_2).decode())
    else:
        replayed = await replay_dead_letters(store, delivery_id=delivery_id, filters=filters)
        print(f"replayed {replayed} dead letter{'' if replayed == 1 else 's'}")
