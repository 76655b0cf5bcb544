"""Dead letters for the operator: list, show and replay them, from the CLI or the admin API.

A dead letter is a message the gateway gave up on, kept in the store's one `dead_letters` table
with its source and reason, whatever gave up on it (gateway/store/dead_letters.py lists the
sources). Its id is the dead letter's own. Replay hands each one back to the step that gave up:

- `delivery:<partner>`: the delivery is pending again, due at once, with the same message id,
  so the partner can dedup on `webhook-id` a message it had in fact received;
- `relay`: the outbox row is pending again; the relay publishes it on its next pass (bind a
  queue to the events exchange first, or it comes straight back);
- `amqp:<queue>`, `intake:<partner>`: the message goes through its intake again under its own
  idempotency key (gateway/resubmit.py); refused again, the dead letter stays with the new
  reason;
- `actor:<name>`: not replayable.

A replayed dead letter leaves the store (with any older one of the same message). A running
gateway picks a replay up within its couriers' and relay's idle wait even when another process
made it (the CLI); a replay through the admin API also wakes the couriers at once.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
import msgspec
import orjson

from canonical.errors import ConfigError, GatewayError
from gateway.config import GatewayConfig, load_config
from gateway.config.partial import load_store_settings
from gateway.resubmit import NotReplayable, RefusedAgain, Resubmit, resubmitters
from gateway.store import DeadLetter, Store
from gateway.store.dead_letters import PUT_BACK_KINDS, DeadLetterHead, kind_of
from protocols.http.routing import BadRequest, NotFound

__all__ = [
    "DEFAULT_LIST_LIMIT",
    "DeadLetterFilter",
    "NotReplayable",
    "ReplayOutcome",
    "dead_letter_line",
    "list_dead_letters",
    "parse_time",
    "replay_dead_letters",
    "run_dead_letters_command",
    "show_dead_letter",
    "summary",
]

log = logging.getLogger(__name__)

# Dead letters one list returns unless told otherwise; page on with `after`.
DEFAULT_LIST_LIMIT = 100
MAX_LIST_LIMIT = 10_000
# Dead letters a replay by filters takes per store transaction.
REPLAY_PAGE = 500


class DeadLetterFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Which dead letters: every field given must match; `since`/`until` bound their death.

    `source` is a source ("delivery:acme") or a kind ("delivery", "relay", "amqp", "intake").
    """

    source: str | None = None
    partner_id: str | None = None
    document_type: str | None = None
    since: float | None = None  # unix seconds, inclusive
    until: float | None = None  # unix seconds, exclusive

    def is_empty(self) -> bool:
        return all(v is None for v in msgspec.structs.astuple(self))


class ReplayOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What a replay did with the dead letters it took."""

    replayed: int = 0  # handed back and out of the dead letters
    still_dead: int = 0  # their intake refused them again; kept with the new reason
    not_replayable: int = 0  # nothing to hand back (an actor's, a purged row, an old one)


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
) -> list[DeadLetterHead]:
    """Return dead letters matching `filters`, in id order, after the id `after`."""
    return await store.dead_letter_book.heads(
        **msgspec.structs.asdict(filters), after_id=after, limit=max(1, min(limit, MAX_LIST_LIMIT))
    )


async def show_dead_letter(store: Store, dead_letter_id: int) -> dict[str, Any]:
    """Return one dead letter with its detail and body, as JSON-able values; NotFound if none."""
    found = await store.dead_letter_book.get(dead_letter_id)
    if found is None:
        raise NotFound(f"no dead letter {dead_letter_id}")
    letter, document_type = found
    return {
        **summary(_head(letter, document_type)),
        "detail": _json_or_text(letter.detail.encode()),
        "body": _json_or_text(letter.payload),
    }


async def replay_dead_letters(
    store: Store,
    resubmit: Mapping[str, Resubmit],
    *,
    dead_letter_id: int | None = None,
    filters: DeadLetterFilter | None = None,
    progress: Callable[[ReplayOutcome], None] | None = None,
) -> ReplayOutcome:
    """Replay one dead letter (by id) or every one matching `filters`; say what became of them.

    Refuses (BadRequest) neither an id nor any filter: replaying everything that ever died is
    too big a step to take by leaving the filters out. One dead letter by id that cannot be
    replayed is a `NotReplayable` (409) naming why. `resubmit` holds the intakes by source kind
    (`gateway.resubmit.resubmitters`). `progress`, when given, is told the totals so far after
    each page of a replay by filters (the CLI prints them: a bulk replay can take a while).
    """
    if dead_letter_id is not None:
        if filters is not None and not filters.is_empty():
            raise BadRequest("give either an id or filters, not both")
        found = await store.dead_letter_book.get(dead_letter_id)
        if found is None:
            raise NotFound(f"no dead letter {dead_letter_id}")
        outcome, refusals = await _replay(store, resubmit, [_head(*found)])
        if refusals:
            raise NotReplayable(f"dead letter {dead_letter_id}: {refusals[0]}")
        return outcome
    if filters is None or filters.is_empty():
        raise BadRequest("give a dead letter id, or at least one filter (source, partner, ...)")
    total = ReplayOutcome()
    after = 0
    while page := await list_dead_letters(store, filters, after=after, limit=REPLAY_PAGE):
        outcome, _ = await _replay(store, resubmit, page)
        total = ReplayOutcome(
            replayed=total.replayed + outcome.replayed,
            still_dead=total.still_dead + outcome.still_dead,
            not_replayable=total.not_replayable + outcome.not_replayable,
        )
        if progress is not None:
            progress(total)
        after = page[-1].id
    return total


async def _replay(
    store: Store, resubmit: Mapping[str, Resubmit], heads: list[DeadLetterHead]
) -> tuple[ReplayOutcome, list[str]]:
    """Replay `heads`; return the outcome and why each refused one could not be replayed."""
    refusals: list[str] = []
    put_back = [h.id for h in heads if kind_of(h.source) in PUT_BACK_KINDS]
    replayed = still_dead = 0
    if put_back:
        done = await store.dead_letter_book.put_back(put_back)
        replayed += len(done.replayed)
        refusals += [why for _, why in done.refused]
    for head in heads:
        kind = kind_of(head.source)
        if kind in PUT_BACK_KINDS:
            continue
        if kind not in resubmit:
            refusals.append(f"a {kind!r} dead letter cannot be replayed")
            continue
        found = await store.dead_letter_book.get(head.id)
        if found is None:
            continue  # replayed meanwhile, by another replay
        try:
            await resubmit[kind](found[0])
        except NotReplayable as exc:
            refusals.append(exc.detail)
        except RefusedAgain as again:
            log.info("dead letter %d refused again: %s", head.id, again.reason)
            await store.dead_letter_book.renew(head.id, again.reason, again.detail)
            still_dead += 1
        else:
            await store.dead_letter_book.discard(head.id)
            replayed += 1
    for why in refusals:
        log.info("dead letter not replayed: %s", why)
    outcome = ReplayOutcome(replayed=replayed, still_dead=still_dead, not_replayable=len(refusals))
    return outcome, refusals


def dead_letter_line(head: DeadLetterHead) -> str:
    """One dead letter on one line: id, when it died, source, partner, document, message, why."""
    return "\t".join(
        (
            str(head.id),
            _iso(head.created_at),
            head.source,
            head.partner_id or "-",
            head.document_type or "-",
            head.message_id or "-",
            head.reason,
        )
    )


def summary(head: DeadLetterHead) -> dict[str, Any]:
    """One dead letter as JSON-able values, without its detail and body."""
    return {
        "id": head.id,
        "source": head.source,
        "partner_id": head.partner_id,
        "message_id": head.message_id,
        "document_type": head.document_type,
        "died_at": _iso(head.created_at),
        "reason": head.reason,
    }


def _head(letter: DeadLetter, document_type: str | None) -> DeadLetterHead:
    return DeadLetterHead(
        id=letter.id,
        source=letter.source,
        partner_id=letter.partner_id,
        message_id=letter.message_id,
        document_type=document_type,
        reason=letter.reason,
        created_at=letter.created_at,
    )


def _iso(unix: float) -> str:
    return dt.datetime.fromtimestamp(unix, dt.UTC).isoformat()


def _json_or_text(raw: bytes) -> Any:
    """JSON as JSON (envelopes and details are), anything else as text."""
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace")
    return orjson.Fragment(raw)


def run_dead_letters_command(
    action: str,
    config_path: Path,
    environ: Mapping[str, str],
    *,
    dead_letter_id: int | None = None,
    source: str | None = None,
    partner: str | None = None,
    document: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int = DEFAULT_LIST_LIMIT,
) -> int:
    """The `gateway dead-letters list|show|replay` command, on the config's store file.

    Opens the store directly, so no gateway needs to be running; a running one notices a replay
    within its couriers' and relay's idle wait. Prints one line per dead letter (list), JSON
    (show) or what the replay did (replay); returns the exit code.
    """
    config: GatewayConfig | None = None
    try:
        # Replay hands letters to the intakes, which need the partners but none of their
        # secrets; list and show read the store alone. A secret missing from this shell stops
        # neither.
        if action == "replay":
            config = load_config(config_path, environ, resolve_secrets=False)
            settings = config.store
        else:
            settings = load_store_settings(config_path)
        filters = DeadLetterFilter(
            source=source,
            partner_id=partner,
            document_type=document,
            since=parse_time(since, "--since") if since else None,
            until=parse_time(until, "--until") if until else None,
        )
    except ConfigError as exc:
        for error in exc.errors:
            print(error.message, file=sys.stderr)
        return 2  # a config that does not load is a usage error, as everywhere (gateway/cli.py)
    except BadRequest as exc:
        print(exc.detail, file=sys.stderr)
        return 2

    async def run() -> int:
        async with Store(settings.path, synchronous=settings.synchronous) as store:
            resubmit = resubmitters(config, store) if config is not None else {}
            # Answered inside the block: the store's task group would wrap what escapes it.
            try:
                await _act(store, resubmit, action, dead_letter_id, filters, limit)
            except (NotFound, NotReplayable) as exc:
                # The thing asked for is missing or cannot be done: 1, like `show` of a
                # missing id; 2 stays for what was asked wrongly (BadRequest).
                print(exc.detail, file=sys.stderr)
                return 1
            except GatewayError as exc:
                print(exc.detail, file=sys.stderr)
                return 2
            return 0

    if not Path(settings.path).exists():
        print(f"no store at {settings.path}", file=sys.stderr)
        return 1
    return anyio.run(run)


async def _act(
    store: Store,
    resubmit: Mapping[str, Resubmit],
    action: str,
    dead_letter_id: int | None,
    filters: DeadLetterFilter,
    limit: int,
) -> None:
    """Do one CLI action on an open store and print its outcome."""
    if action == "list":
        for head in await list_dead_letters(store, filters, limit=limit):
            print(dead_letter_line(head))
    elif action == "show":
        if dead_letter_id is None:
            raise BadRequest("show: give the dead letter's id")
        shown = await show_dead_letter(store, dead_letter_id)
        print(orjson.dumps(shown, option=orjson.OPT_INDENT_2).decode())
    else:
        done = await replay_dead_letters(
            store,
            resubmit,
            dead_letter_id=dead_letter_id,
            filters=filters,
            progress=_print_progress if sys.stderr.isatty() else None,
        )
        print(_replay_line(done))


def _print_progress(total: ReplayOutcome) -> None:
    # On a terminal only (a script reads the outcome line alone): one line per page.
    done = total.replayed + total.still_dead + total.not_replayable
    print(f"... {done} dead letters handled so far", file=sys.stderr, flush=True)


def _replay_line(done: ReplayOutcome) -> str:
    line = f"replayed {done.replayed} dead letter{'' if done.replayed == 1 else 's'}"
    if done.still_dead:
        line += f", {done.still_dead} refused again (see their reason)"
    if done.not_replayable:
        line += f", {done.not_replayable} not replayable"
    return line
