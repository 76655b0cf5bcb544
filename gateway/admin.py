"""The admin listener: `/healthz` (alive), `/readyz` (ready to accept), `/metrics` (Prometheus).

A `ProblemRouter` (protocols/http/router.py) on its own port, so probes and scrapes never queue
behind partner traffic.
It also serves the generated contracts: `/openapi.json?listener=partner|admin|api` (admin by
default) and `/asyncapi.json` (gateway/contracts/). `OPERATIONS` describes every admin route,
the operator's and the trace's included.
`guarded` puts it behind `protocols.http.admin_guard.ListenerGuard`: Host allow-list, no browser
origins, JSON bodies only, and the `[admin] token` on everything but the two probes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Annotated, Any, Literal

import msgspec
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response as HTTPResponse
from starlette.routing import BaseRoute, Route

from canonical.common import PartnerId
from gateway.deadletters import ReplayOutcome
from gateway.reload import ReloadOutcome
from gateway.trace import ThreadTrace
from protocols.http.admin_guard import ListenerGuard
from protocols.http.asgi import ASGIApp, Receive, Scope, Send
from protocols.http.operations import Operation, Parameter, Response
from protocols.http.problem import Problem
from protocols.http.router import ProblemRouter, json_response
from protocols.http.routing import MAX_ID, BadRequest

__all__ = ["OPERATIONS", "PROBE_PATHS", "AdminApp", "ReadinessCheck", "guarded"]

# Answered without the token: an orchestrator's probes carry none (gateway/admin.py's guard).
PROBE_PATHS = ("/healthz", "/readyz")

ReadinessCheck = Callable[[], Awaitable[bool]]

_JSON = "application/json"


class AdminApp(ProblemRouter):
    """Serve health, readiness, metrics and the contracts, then `routes` (the operator's, the
    trace's: gateway/operator.py, gateway/trace.py); one more route is one more `Route`."""

    def __init__(
        self,
        registry: CollectorRegistry,
        checks: Mapping[str, ReadinessCheck],
        routes: Sequence[BaseRoute] = (),
    ) -> None:
        self.registry = registry
        self.checks = dict(checks)
        super().__init__(
            [
                Route("/healthz", _health, methods=["GET"]),
                Route("/readyz", self._ready, methods=["GET"]),
                Route("/metrics", self._metrics, methods=["GET"]),
                Route("/openapi.json", _openapi, methods=["GET"]),
                Route("/asyncapi.json", _asyncapi, methods=["GET"]),
                *routes,
            ]
        )

    async def _ready(self, request: Request) -> HTTPResponse:
        results: dict[str, bool] = {}
        for name, check in self.checks.items():
            try:
                results[name] = await check()
            except Exception:
                results[name] = False
        ready = all(results.values())
        body = {"status": "ready" if ready else "not ready", "checks": results}
        return json_response(body, 200 if ready else 503)

    async def _metrics(self, request: Request) -> HTTPResponse:
        return HTTPResponse(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


def guarded(
    app: AdminApp,
    *,
    token: bytes | None,
    allowed_hosts: tuple[str, ...],
    console: ASGIApp | None = None,
) -> ASGIApp:
    """The admin app behind the listener guard; the probes stay open.

    `console` (gateway/console: pages for a browser, behind its own guard) answers `/console`:
    which guard applies is the one choice made here, the routing is each app's.
    """
    api = ListenerGuard(app, allowed_hosts=allowed_hosts, token=token, open_paths=PROBE_PATHS)
    if console is None:
        return api
    console_app = console

    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if path == "/console" or path.startswith("/console/"):
            await console_app(scope, receive, send)
        else:
            await api(scope, receive, send)

    return route


async def _health(request: Request) -> HTTPResponse:
    return HTTPResponse(b'{"status":"alive"}', media_type=_JSON)


async def _openapi(request: Request) -> HTTPResponse:
    """`/openapi.json?listener=`, generated once per process."""
    # Imported here: the contracts read this module's OPERATIONS.
    from gateway.contracts import LISTENERS, openapi_json

    listener = request.query_params.get("listener") or "admin"
    if listener not in LISTENERS:
        raise BadRequest(f"listener: one of {', '.join(LISTENERS)}")
    return HTTPResponse(openapi_json(listener), media_type=_JSON)


async def _asyncapi(request: Request) -> HTTPResponse:
    from gateway.contracts import asyncapi_json

    return HTTPResponse(asyncapi_json(), media_type=_JSON)


# The contract of this listener (gateway/contracts/openapi.py turns it into OpenAPI 3.1).


class Health(msgspec.Struct, frozen=True, kw_only=True):
    status: str


class Readiness(msgspec.Struct, frozen=True, kw_only=True):
    status: str
    checks: dict[str, bool]


class DeadLetterSummary(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    source: str
    partner_id: str | None
    message_id: str | None
    document_type: str | None
    died_at: str
    reason: str


class DeadLetterPage(msgspec.Struct, frozen=True, kw_only=True):
    dead_letters: list[DeadLetterSummary]
    next: int


class DeadLetterDetail(DeadLetterSummary, frozen=True, kw_only=True):
    detail: Any
    body: Any


class ReplayRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One dead letter by id, or every one matching the filters (at least one)."""

    id: Annotated[int, msgspec.Meta(ge=0, le=MAX_ID)] | None = None
    source: str | None = None
    partner: str | None = None
    document: str | None = None
    since: str | None = None
    until: str | None = None


class EmptyObject(msgspec.Struct, frozen=True, kw_only=True):
    """`{}`: a POST that needs no input still sends JSON, the guard's rule against forms."""


class EndpointEnabled(msgspec.Struct, frozen=True, kw_only=True):
    partner: str
    was_disabled: bool


class ThreadsOfOrder(msgspec.Struct, frozen=True, kw_only=True):
    threads: list[ThreadTrace]


_PROBLEM = "application/problem+json"
_Id = Annotated[int, msgspec.Meta(ge=0, le=MAX_ID)]


def _problem(status: int, description: str, *headers: str) -> Response:
    return Response(
        status=status, description=description, body=Problem, media_type=_PROBLEM, headers=headers
    )


# Every guarded route may answer these (protocols/http/admin_guard.py).
_GUARD = (
    _problem(401, "Missing or wrong admin token", "WWW-Authenticate"),
    _problem(403, "A browser origin"),
    _problem(421, "Not served under this host name"),
)
_BAD = _problem(400, "Bad parameter or body")
_FILTERS = tuple(
    Parameter(name=name, where="query", description=text)
    for name, text in (
        ("source", "a source (delivery:acme) or a kind (delivery, relay, amqp, intake, actor)"),
        ("partner", "a partner id"),
        ("document", "a document type"),
        ("since", "died at or after this ISO 8601 time"),
        ("until", "died before this ISO 8601 time"),
    )
)


def _get(path: str, operation_id: str, summary: str, *responses: Response, **kw: Any) -> Operation:
    return Operation(
        method="GET",
        path=path,
        operation_id=operation_id,
        summary=summary,
        tags=("admin",),
        security=("bearer",),
        responses=(*responses, *_GUARD),
        **kw,
    )


def _post(
    path: str,
    operation_id: str,
    summary: str,
    request_body: type,
    *responses: Response,
    **kw: Any,
) -> Operation:
    """A guarded POST: its body must be JSON (the guard's answer to anything else is 415)."""
    return Operation(
        method="POST",
        path=path,
        operation_id=operation_id,
        summary=summary,
        tags=("admin",),
        request_body=request_body,
        security=("bearer",),
        responses=(*responses, _problem(415, "Not a JSON body"), *_GUARD),
        **kw,
    )


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        method="GET",
        path="/healthz",
        operation_id="healthz",
        summary="Alive",
        tags=("probes",),
        responses=(Response(status=200, description="Alive", body=Health),),
    ),
    Operation(
        method="GET",
        path="/readyz",
        operation_id="readyz",
        summary="Ready to accept: store, broker and ERP consumers",
        tags=("probes",),
        responses=(
            Response(status=200, description="Ready", body=Readiness),
            Response(status=503, description="Not ready; `checks` says what", body=Readiness),
        ),
    ),
    _get(
        "/metrics",
        "metrics",
        "Prometheus metrics",
        Response(
            status=200, description="Text exposition format", body=str, media_type="text/plain"
        ),
    ),
    _get(
        "/dead-letters",
        "list_dead_letters",
        "Dead letters matching the filters, in id order",
        Response(status=200, description="A page", body=DeadLetterPage),
        _BAD,
        parameters=(
            *_FILTERS,
            Parameter(name="after", where="query", type=_Id, description="an id (0)"),
            Parameter(name="limit", where="query", type=_Id, description="at most this many"),
        ),
    ),
    _get(
        "/dead-letters/{id}",
        "show_dead_letter",
        "One dead letter with its detail and body",
        Response(status=200, description="The dead letter", body=DeadLetterDetail),
        _BAD,
        _problem(404, "No such dead letter"),
        parameters=(Parameter(name="id", where="path", type=_Id, required=True),),
    ),
    _post(
        "/dead-letters/replay",
        "replay_dead_letters",
        "Hand dead letters back to the step that gave up: one by id, or by filters",
        ReplayRequest,
        Response(status=200, description="What became of them", body=ReplayOutcome),
        _BAD,
        _problem(404, "No such dead letter"),
        _problem(409, "This dead letter cannot be replayed"),
    ),
    _post(
        "/endpoints/{partner}/enable",
        "enable_endpoint",
        "Enable a partner's endpoint the breaker disabled",
        EmptyObject,
        Response(status=200, description="Enabled", body=EndpointEnabled),
        _problem(404, "No such partner"),
        parameters=(Parameter(name="partner", where="path", type=PartnerId, required=True),),
    ),
    _get(
        "/threads/{correlation_id}",
        "thread_trace",
        "A purchase-order thread's trace by correlation id",
        Response(status=200, description="The trace", body=ThreadTrace),
        _problem(404, "No such thread"),
        parameters=(Parameter(name="correlation_id", where="path", required=True),),
    ),
    _get(
        "/purchase-orders/{buyer}/{po_number}",
        "purchase_order_threads",
        "The threads of one buyer's purchase order",
        Response(status=200, description="Its threads", body=ThreadsOfOrder),
        _problem(404, "No such purchase order"),
        parameters=(
            Parameter(name="buyer", where="path", required=True),
            Parameter(name="po_number", where="path", required=True),
        ),
    ),
    _post(
        "/config/reload",
        "reload_config",
        "Read the configuration file again and swap in what changed (README: Reloading)",
        EmptyObject,
        Response(status=200, description="Applied; what changed", body=ReloadOutcome),
        _problem(422, "The file was refused, every problem listed; the running one is kept"),
    ),
    _get(
        "/openapi.json",
        "openapi",
        "The OpenAPI 3.1 document of a listener, generated from the code",
        Response(status=200, description="OpenAPI 3.1", body=dict[str, Any]),
        _BAD,
        parameters=(
            Parameter(
                name="listener",
                where="query",
                type=Literal["partner", "admin", "api"],
                description="which listener (admin by default)",
            ),
        ),
    ),
    _get(
        "/asyncapi.json",
        "asyncapi",
        "The AsyncAPI 3.0 document of the events exchange and outbound webhooks",
        Response(status=200, description="AsyncAPI 3.0", body=dict[str, Any]),
    ),
)
