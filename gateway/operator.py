"""The operator's admin routes: dead letters (list, show, replay) and endpoints (enable).

- `GET /dead-letters?source=&partner=&document=&since=&until=&after=&limit=`:
  `{"dead_letters": [...], "next": id}`; `source` is a source or its kind (`delivery`, `relay`,
  `amqp`, `intake`, `actor`); `since`/`until` are ISO 8601 times bounding when it died.
- `GET /dead-letters/{id}`: one dead letter with its detail and body.
- `POST /dead-letters/replay` with `{"id": n}` or filters `{"source", "partner", "document",
  "since", "until"}`: `{"replayed": n, "still_dead": n, "not_replayable": n}`
  (gateway/deadletters.py says what a replay does per source); the couriers are woken at once.
  One id that cannot be replayed is a 409 saying why.
- `POST /endpoints/{partner}/enable`: `{"partner": id, "was_disabled": bool}`.

JSON answers, problem+json errors. Served only on the admin listener, behind its guard
(gateway/admin.py: Host allow-list, no browser origins, JSON POSTs, `[admin] token`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Annotated, Any
from urllib.parse import parse_qsl

import msgspec

from gateway.deadletters import (
    DEFAULT_LIST_LIMIT,
    DeadLetterFilter,
    list_dead_letters,
    parse_time,
    replay_dead_letters,
    show_dead_letter,
    summary,
)
from gateway.resubmit import Resubmit
from gateway.store import Store
from protocols.http.asgi import ASGIApp, Receive, Scope, Send
from protocols.http.problem import MethodNotAllowed, RouteNotFound
from protocols.http.routing import MAX_ID, BadRequest, NotFound, answer_json, natural, read_json

__all__ = ["OperatorApi", "operator_routes"]


class _Replay(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: Annotated[int, msgspec.Meta(ge=0, le=MAX_ID)] | None = None
    source: str | None = None
    partner: str | None = None
    document: str | None = None
    since: str | None = None
    until: str | None = None


_REPLAY_DECODER = msgspec.json.Decoder(_Replay)


class OperatorApi:
    """ASGI app for the dead-letter and endpoint routes of the admin listener."""

    def __init__(
        self,
        store: Store,
        partners: Collection[str],
        wake: Callable[[str | None], None],
        resubmit: Mapping[str, Resubmit],
    ) -> None:
        self._store = store
        self._partners = frozenset(partners)
        # Wakes a partner's courier (None: every courier) so a replay goes out at once.
        self._wake = wake
        # The intakes that take ERP and webhook dead letters again (gateway/resubmit.py).
        self._resubmit = dict(resubmit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return

        async def handle() -> tuple[int, Any]:
            return await self._route(scope, receive)

        await answer_json(scope, send, handle)

    async def _route(self, scope: Scope, receive: Receive) -> tuple[int, Any]:
        path: str = scope["path"].rstrip("/")
        method: str = scope["method"]
        parts = path.split("/")[1:]
        if parts == ["dead-letters"]:
            _require(method, "GET", path)
            return 200, await self._list(_query(scope))
        if parts == ["dead-letters", "replay"]:
            _require(method, "POST", path)
            return 200, await self._replay(await read_json(receive))
        if len(parts) == 2 and parts[0] == "dead-letters":
            _require(method, "GET", path)
            return 200, await show_dead_letter(self._store, natural(parts[1], "id"))
        if len(parts) == 3 and parts[0] == "endpoints" and parts[2] == "enable":
            _require(method, "POST", path)
            return 200, await self._enable(parts[1])
        raise RouteNotFound(f"no route {path[:80]}")

    async def _list(self, query: dict[str, str]) -> dict[str, Any]:
        filters = _filters(
            query.get("source"),
            query.get("partner"),
            query.get("document"),
            query.get("since"),
            query.get("until"),
        )
        after = natural(query["after"], "after") if "after" in query else 0
        limit = natural(query["limit"], "limit") if "limit" in query else DEFAULT_LIST_LIMIT
        found = await list_dead_letters(self._store, filters, after=after, limit=limit)
        return {
            "dead_letters": [summary(d) for d in found],
            "next": found[-1].id if found else after,
        }

    async def _replay(self, raw: object) -> dict[str, int]:
        try:
            body = _REPLAY_DECODER.decode(msgspec.json.encode(raw))
        except msgspec.ValidationError as exc:
            raise BadRequest(f"replay: {exc}") from None
        filters = _filters(body.source, body.partner, body.document, body.since, body.until)
        done = await replay_dead_letters(
            self._store, self._resubmit, dead_letter_id=body.id, filters=filters
        )
        if done.replayed:
            self._wake(body.partner)
        return msgspec.structs.asdict(done)

    async def _enable(self, partner_id: str) -> dict[str, Any]:
        if partner_id not in self._partners:
            raise NotFound(f"no partner {partner_id[:80]}")
        was_disabled = await self._store.deliveries.enable_endpoint(partner_id)
        self._wake(partner_id)
        return {"partner": partner_id, "was_disabled": was_disabled}


def operator_routes(api: OperatorApi) -> dict[str, ASGIApp]:
    """Return the admin listener's `extra_routes` entries (exact paths and "/" prefixes)."""
    return {"/dead-letters": api, "/dead-letters/": api, "/endpoints/": api}


def _filters(
    source: str | None,
    partner: str | None,
    document: str | None,
    since: str | None,
    until: str | None,
) -> DeadLetterFilter:
    return DeadLetterFilter(
        source=source or None,
        partner_id=partner or None,
        document_type=document or None,
        since=parse_time(since, "since") if since else None,
        until=parse_time(until, "until") if until else None,
    )


def _require(method: str, wanted: str, path: str) -> None:
    if method != wanted:
        raise MethodNotAllowed(f"{method} on {path}", allow=(wanted,))


def _query(scope: Scope) -> dict[str, str]:
    return dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
