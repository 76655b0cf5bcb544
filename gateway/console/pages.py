"""The console's pages and its few JSON routes, behind `ConsoleGuard` (gateway/console/guard.py).

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

from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl

import msgspec
import orjson

from actors.workflow.state import decode_state
from canonical.delivery import DeliveryAttempt
from canonical.errors import GatewayError
from gateway.console import views
from gateway.console.guard import SECURITY_HEADERS
from gateway.console.html import Html, page
from gateway.console.overview import Overview
from gateway.console.queries import Reads
from gateway.console.static import ASSETS
from gateway.deadletters import (
    DEFAULT_LIST_LIMIT,
    DeadLetterFilter,
    list_dead_letters,
    parse_time,
    show_dead_letter,
    summary,
)
from gateway.store import Store
from gateway.trace import ThreadTrace, thread_trace
from protocols.http.asgi import ASGIApp, Receive, Scope, Send, send_response
from protocols.http.problem import MethodNotAllowed, RouteNotFound, problem_response
from protocols.http.routing import BadRequest, NotFound, natural

__all__ = ["ConsoleApp"]

# Open threads the exceptions page decodes per page.
EXCEPTION_SCAN_PAGE = 200
# Journal entries of a thread whose delivery attempts its page looks up (a seek each).
MAX_ENTRIES_WITH_ATTEMPTS = 200
_JSON = ((b"content-type", b"application/json"), (b"cache-control", b"no-store"))


class ConsoleApp:
    """Route a console request (the guard has checked it) to its page or action."""

    def __init__(
        self,
        store: Store,
        reads: Reads,
        overview: Overview,
        admin_api: ASGIApp,
        partners: Sequence[str],
        *,
        poll_ms: int,
    ) -> None:
        self._store = store
        self._reads = reads
        self._overview = overview
        self._admin_api = admin_api
        self._partners = list(partners)
        self._known = frozenset(partners)
        self._poll_ms = poll_ms

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        try:
            if path in ASSETS:
                media, asset = ASSETS[path]
                await send_response(
                    send, 200, ((b"content-type", media), (b"cache-control", b"no-cache")), asset
                )
            elif path.startswith("/console/api/"):
                await self._api(scope, receive, send)
            else:
                if scope["method"] not in ("GET", "HEAD"):
                    raise MethodNotAllowed(f"{scope['method']} on {path[:80]}", allow=("GET",))
                title, content, current, search = await self._page(scope)
                html = page(
                    title, content, csrf=scope["console.csrf"], current=current, search=search
                )
                await send_response(send, 200, SECURITY_HEADERS, html)
        except GatewayError as error:
            status, problem_headers, problem = problem_response(error, instance=path)
            await send_response(send, status, problem_headers, problem)

    async def _api(self, scope: Scope, receive: Receive, send: Send) -> None:
        rest = scope["path"].removeprefix("/console/api")
        parts = rest.strip("/").split("/")
        if rest == "/overview" and scope["method"] == "GET":
            page_no = _int(_query(scope).get("page"), "page", 1)
            body = orjson.dumps(await self._overview.read(page_no))
            await send_response(send, 200, _JSON, body)
        elif len(parts) == 3 and parts[0] == "endpoints" and parts[2] == "disable":
            if scope["method"] != "POST":
                raise MethodNotAllowed(f"{scope['method']} on {rest[:80]}", allow=("POST",))
            if parts[1] not in self._known:
                raise NotFound(f"no partner {parts[1][:80]}")
            await self._store.deliveries.disable_endpoint(parts[1], "disabled by an operator")
            await send_response(send, 200, _JSON, orjson.dumps({"partner": parts[1]}))
        elif rest == "/dead-letters/replay" or (
            len(parts) == 3 and parts[0] == "endpoints" and parts[2] == "enable"
        ):
            await self._admin_api({**scope, "path": rest, "raw_path": rest.encode()}, receive, send)
        else:
            raise RouteNotFound(f"no route {scope['path'][:80]}")

    async def _page(self, scope: Scope) -> tuple[str, Html, str, str]:
        path: str = scope["path"].rstrip("/") or "/console"
        q = _query(scope)
        parts = path.split("/")[2:]
        if not parts:
            data = await self._overview.read(_int(q.get("page"), "page", 1))
            return "Overview", views.overview(data, self._poll_ms), "/console/", ""
        if parts == ["search"]:
            text = q.get("q", "").strip()
            return "Search", await self._search(text), "", text
        if len(parts) == 2 and parts[0] == "threads":
            row = await self._reads.thread(natural(parts[1], "thread"))
            if row is None:
                raise NotFound(f"no thread {parts[1][:40]}")
            trace = await thread_trace(self._store.workflow, row)
            attempts = await self._attempts(trace)
            title = f"PO {row.po_number} ({row.supplier})"
            return title, views.thread(trace, attempts), "", row.po_number
        if parts == ["dead-letters"]:
            return "Dead letters", await self._dead_letters(q), "/console/dead-letters", ""
        if len(parts) == 2 and parts[0] == "dead-letters":
            shown = await show_dead_letter(self._store, natural(parts[1], "id"))
            return f"Dead letter {parts[1]}", views.dead_letter(shown), "/console/dead-letters", ""
        if parts == ["deliveries"]:
            return "Deliveries", await self._deliveries(q), "", ""
        if parts == ["endpoints"]:
            disabled = await self._reads.delivery_partners_disabled()
            return "Endpoints", views.endpoints(self._partners, disabled), "/console/endpoints", ""
        if parts == ["exceptions"]:
            return "Open exceptions", await self._exceptions(q), "/console/exceptions", ""
        raise RouteNotFound(f"no page {path[:80]}")

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

    async def _dead_letters(self, q: dict[str, str]) -> Html:
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
        return views.dead_letters(q, rows, next_after=found[-1].id if more else None)

    async def _deliveries(self, q: dict[str, str]) -> Html:
        partner, message_id = q.get("partner") or None, q.get("message_id") or None
        if partner is None or message_id is None:
            # Both: (partner, message id) is the deliveries' unique key, one seek; a partner
            # alone would sort every delivery it ever had.
            raise BadRequest("deliveries: give a partner and a message_id")
        found = await self._store.deliveries.deliveries(partner_id=partner, message_id=message_id)
        attempts = {d.id: await self._store.deliveries.attempts(d.id) for d in found}
        return views.deliveries(q, found, attempts)

    async def _exceptions(self, q: dict[str, str]) -> Html:
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
        return views.exceptions(q, found, next_before=rows[-1].id if more and rows else None)


def _query(scope: Scope) -> dict[str, str]:
    return dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))


def _int(text: str | None, name: str, default: int) -> int:
    return default if not text else natural(text, name)
