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
from typing import Annotated

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

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
from protocols.http.router import json_response
from protocols.http.routing import MAX_ID, BadRequest, NotFound, natural, read_json

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
    """The handlers of the dead-letter and endpoint routes of the admin listener."""

    def __init__(
        self,
        store: Store,
        partners: Collection[str],
        wake: Callable[[str | None], None],
        resubmit: Mapping[str, Resubmit],
    ) -> None:
        self._store = store
        # Wakes a partner's courier (None: every courier) so a replay goes out at once.
        self._wake = wake
        self.reconfigure(partners, resubmit)

    def reconfigure(self, partners: Collection[str], resubmit: Mapping[str, Resubmit]) -> None:
        """Take the partners and the intakes (which take ERP and webhook dead letters again:
        gateway/resubmit.py) of a reloaded configuration."""
        self._partners = frozenset(partners)
        self._resubmit = dict(resubmit)

    async def page(self, request: Request) -> Response:
        query = request.query_params
        filters = _filters(
            query.get("source"),
            query.get("partner"),
            query.get("document"),
            query.get("since"),
            query.get("until"),
        )
        # A blank parameter is an absent one.
        after = natural(query["after"], "after") if query.get("after") else 0
        limit = natural(query["limit"], "limit") if query.get("limit") else DEFAULT_LIST_LIMIT
        found = await list_dead_letters(self._store, filters, after=after, limit=limit)
        return json_response(
            {
                "dead_letters": [summary(d) for d in found],
                "next": found[-1].id if found else after,
            }
        )

    async def show(self, request: Request) -> Response:
        dead_letter_id = natural(request.path_params["id"], "id")
        return json_response(await show_dead_letter(self._store, dead_letter_id))

    async def replay(self, request: Request) -> Response:
        raw = await read_json(request.receive)
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
        return json_response(msgspec.structs.asdict(done))

    async def enable(self, request: Request) -> Response:
        partner_id: str = request.path_params["partner"]
        if partner_id not in self._partners:
            raise NotFound(f"no partner {partner_id[:80]}")
        was_disabled = await self._store.deliveries.enable_endpoint(partner_id)
        self._wake(partner_id)
        return json_response({"partner": partner_id, "was_disabled": was_disabled})


def operator_routes(api: OperatorApi) -> list[Route]:
    """The admin listener's routes for the operator (gateway/admin.py `AdminApp(routes=)`)."""
    return [
        Route("/dead-letters", api.page, methods=["GET"]),
        Route("/dead-letters/replay", api.replay, methods=["POST"]),
        Route("/dead-letters/{id}", api.show, methods=["GET"]),
        Route("/endpoints/{partner}/enable", api.enable, methods=["POST"]),
    ]


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
