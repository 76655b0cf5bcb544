"""The console's pages and its few JSON routes, behind `ConsoleGuard` (gateway/console/guard.py),
on a `ProblemRouter` (protocols/http/router.py) like the rest of the admin listener.

Pages (GET, server-rendered): `/console/` overview, `/console/search?q=`, `/console/threads/
{id}`, `/console/dead-letters` (filters, paged), `/console/dead-letters/{id}` (detail with the
attempt log), `/console/deliveries?partner=&message_id=` (a delivery and its attempt log),
`/console/endpoints`, `/console/exceptions?kind=&partner=`.

JSON: `GET /console/api/overview`; the actions go to the admin API's own routes, which this app
calls in-process under `/console/api/` (`dead-letters/replay`, `endpoints/{p}/enable`) so a
replay from the console is the replay the CLI and the API do; `endpoints/{p}/disable` is the
console's own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl

import msgspec
import orjson
from starlette.requests import Request
from starlette.responses import Response as HTTPResponse
from starlette.routing import Route

from actors.workflow.state import decode_state
from canonical.delivery import DeliveryAttempt
from gateway.console import views
from gateway.console.guard import SECURITY_HEADERS
from gateway.console.html import Html, page
from gateway.console.overview import Overview
from gateway.console.static import ASSETS
from gateway.deadletters import (
    DEFAULT_LIST_LIMIT,
    DeadLetterFilter,
    list_dead_letters,
    parse_time,
    show_dead_letter,
    summary,
)
from gateway.store import OperatorReads, Store
from gateway.trace import ThreadTrace, thread_trace
from protocols.http.asgi import ASGIApp, Receive, Scope, Send
from protocols.http.router import ProblemRouter, raw_response
from protocols.http.routing import BadRequest, NotFound, natural

__all__ = ["ConsoleApp"]

# Open threads the exceptions page decodes per page.
EXCEPTION_SCAN_PAGE = 200
# Journal entries of a thread whose delivery attempts its page looks up (a seek each).
MAX_ENTRIES_WITH_ATTEMPTS = 200
_JSON = ((b"content-type", b"application/json"), (b"cache-control", b"no-store"))


_Built = tuple[str, Html, str, str]  # title, content, current nav link, search box text
_Endpoint = Callable[[Request], Awaitable[HTTPResponse]]


class ConsoleApp(ProblemRouter):
    """The console's routes (the guard has checked the request) to its pages and actions."""

    def __init__(
        self,
        store: Store,
        reads: OperatorReads,
        overview: Overview,
        admin_api: ASGIApp,
        partners: Callable[[], Sequence[str]],
        *,
        poll_ms: int,
    ) -> None:
        self._store = store
        self._reads = reads
        self._overview = overview
        self._partners = partners  # read each time: a reload changes them
        self._poll_ms = poll_ms
        admin = _Forward(admin_api)
        super().__init__(
            [
                *(Route(path, _asset(*asset), methods=["GET"]) for path, asset in ASSETS.items()),
                Route("/console/api/overview", self._overview_json, methods=["GET"]),
                Route("/console/api/endpoints/{partner}/disable", self._disable, methods=["POST"]),
                Route("/console/api/dead-letters/replay", admin, methods=["POST"]),
                Route("/console/api/endpoints/{partner}/enable", admin, methods=["POST"]),
                Route("/console", _page(self._home), methods=["GET"]),
                Route("/console/search", _page(self._search_page), methods=["GET"]),
                Route("/console/threads/{id}", _page(self._thread), methods=["GET"]),
                Route("/console/dead-letters", _page(self._dead_letters), methods=["GET"]),
                Route("/console/dead-letters/{id}", _page(self._dead_letter), methods=["GET"]),
                Route("/console/deliveries", _page(self._deliveries), methods=["GET"]),
                Route("/console/endpoints", _page(self._endpoints), methods=["GET"]),
                Route("/console/exceptions", _page(self._exceptions), methods=["GET"]),
            ]
        )

    async def _overview_json(self, request: Request) -> HTTPResponse:
        page_no = _int(_query(request).get("page"), "page", 1)
        return raw_response(200, _JSON, orjson.dumps(await self._overview.read(page_no)))

    async def _disable(self, request: Request) -> HTTPResponse:
        partner: str = request.path_params["partner"]
        if partner not in self._partners():
            raise NotFound(f"no partner {partner[:80]}")
        await self._store.deliveries.disable_endpoint(partner, "disabled by an operator")
        return raw_response(200, _JSON, orjson.dumps({"partner": partner}))

    async def _home(self, request: Request) -> _Built:
        data = await self._overview.read(_int(_query(request).get("page"), "page", 1))
        return "Overview", views.overview(data, self._poll_ms), "/console/", ""

    async def _search_page(self, request: Request) -> _Built:
        text = _query(request).get("q", "").strip()
        return "Search", await self._search(text), "", text

    async def _thread(self, request: Request) -> _Built:
        thread_id: str = request.path_params["id"]
        row = await self._reads.thread(natural(thread_id, "thread"))
        if row is None:
            raise NotFound(f"no thread {thread_id[:40]}")
        trace = await thread_trace(self._store.workflow, row)
        attempts = await self._attempts(trace)
        title = f"PO {row.po_number} ({row.supplier})"
        return title, views.thread(trace, attempts), "", row.po_number

    async def _dead_letter(self, request: Request) -> _Built:
        dead_letter_id: str = request.path_params["id"]
        shown = await show_dead_letter(self._store, natural(dead_letter_id, "id"))
        title = f"Dead letter {dead_letter_id}"
        return title, views.dead_letter(shown), "/console/dead-letters", ""

    async def _endpoints(self, request: Request) -> _Built:
        disabled = await self._reads.delivery_partners_disabled()
        return "Endpoints", views.endpoints(self._partners(), disabled), "/console/endpoints", ""

    async def _search(self, text: str) -> Html:
        if not text:
            return views.search_results(text, [], [], [])
        found = await self._reads.threads_by_correlation(text)
        if not found:
            found = await self._reads.threads_by_po(text)
        if not found and (correlation := await self._reads.correlation_of_message(text)):
            found = await self._reads.threads_by_correlation(correlation)
        files = await self._reads.files_named(text)
        controls = await self._reads.control_numbers(text)
        for hit in controls:
            if hit["correlation_id"]:
                found += await self._reads.threads_by_correlation(hit["correlation_id"])
        unique = {row.id: row for row in found}
        return views.search_results(text, list(unique.values()), files, controls)

    async def _attempts(self, trace: ThreadTrace) -> dict[str, list[DeliveryAttempt]]:
        """The delivery attempts of the thread's messages that went to a partner: a seek each."""
        found: dict[str, list[DeliveryAttempt]] = {}
        for entry in trace.entries[:MAX_ENTRIES_WITH_ATTEMPTS]:
            if entry.partner is None:
                continue
            for delivery in await self._store.deliveries.deliveries(
                partner_id=entry.partner, message_id=entry.message_id
            ):
                found[entry.message_id] = await self._store.deliveries.attempts(delivery.id)
        return found

    async def _dead_letters(self, request: Request) -> _Built:
        q = _query(request)
        filters = DeadLetterFilter(
            source=q.get("source") or None,
            partner_id=q.get("partner") or None,
            document_type=q.get("document") or None,
            since=parse_time(q["since"], "since") if q.get("since") else None,
            until=parse_time(q["until"], "until") if q.get("until") else None,
        )
        after = _int(q.get("after"), "after", 0)
        found = await list_dead_letters(self._store, filters, after=after, limit=DEFAULT_LIST_LIMIT)
        rows = [summary(d) for d in found]
        more = len(found) == DEFAULT_LIST_LIMIT
        content = views.dead_letters(q, rows, next_after=found[-1].id if more else None)
        return "Dead letters", content, "/console/dead-letters", ""

    async def _deliveries(self, request: Request) -> _Built:
        q = _query(request)
        partner, message_id = q.get("partner") or None, q.get("message_id") or None
        if partner is None or message_id is None:
            # Both: (partner, message id) is the deliveries' unique key, one seek; a partner
            # alone would sort every delivery it ever had.
            raise BadRequest("deliveries: give a partner and a message_id")
        found = await self._store.deliveries.deliveries(partner_id=partner, message_id=message_id)
        attempts = {d.id: await self._store.deliveries.attempts(d.id) for d in found}
        return "Deliveries", views.deliveries(q, found, attempts), "", ""

    async def _exceptions(self, request: Request) -> _Built:
        q = _query(request)
        kind, partner = q.get("kind") or None, q.get("partner") or None
        before = _int(q.get("before"), "before", 0) or None
        rows = await self._reads.open_threads(
            partner=partner, before_id=before, limit=EXCEPTION_SCAN_PAGE
        )
        found: list[dict[str, Any]] = []
        for row in rows:
            for x in decode_state(row.state).exceptions:
                if kind is None or x.kind == kind:
                    found.append({"thread": row, **msgspec.to_builtins(x)})
        more = len(rows) == EXCEPTION_SCAN_PAGE
        content = views.exceptions(q, found, next_before=rows[-1].id if more and rows else None)
        return "Open exceptions", content, "/console/exceptions", ""


def _page(
    build: Callable[[Request], Awaitable[_Built]],
) -> Callable[[Request], Awaitable[HTTPResponse]]:
    """The endpoint rendering what `build` answers as a whole page."""

    async def endpoint(request: Request) -> HTTPResponse:
        title, content, current, search = await build(request)
        csrf = request.scope["console.csrf"]
        html = page(title, content, csrf=csrf, current=current, search=search)
        return raw_response(200, SECURITY_HEADERS, html)

    return endpoint


def _asset(media: bytes, body: bytes) -> _Endpoint:
    headers = ((b"content-type", media), (b"cache-control", b"no-cache"))

    async def endpoint(request: Request) -> HTTPResponse:
        return raw_response(200, headers, body)

    return endpoint


class _Forward:
    """Hand a console action to the admin API's own route: `/console/api/x` is its `/x`."""

    def __init__(self, admin_api: ASGIApp) -> None:
        self._admin_api = admin_api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"].removeprefix("/console/api")
        await self._admin_api({**scope, "path": path, "raw_path": path.encode()}, receive, send)


def _query(request: Request) -> dict[str, str]:
    """The query's parameters, a blank one left out."""
    return dict(parse_qsl(request.scope.get("query_string", b"").decode("latin-1")))


def _int(text: str | None, name: str, default: int) -> int:
    return default if not text else natural(text, name)
