"""The one router of the customer API, admin and pull listeners: its problem+json mapping, its
routes against the operations the contracts document, and the pull API's policy swap."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from canonical.errors import RateLimited
from gateway import admin
from gateway.admin import AdminApp
from gateway.operator import OperatorApi, operator_routes
from gateway.reload import reload_route
from gateway.trace import TraceApi, trace_routes
from protocols.http import api, pull
from protocols.http.api import Accounts, ApiLimits, customer_api
from protocols.http.operations import Operation
from protocols.http.pull import PullApi, PulledMessage, PullPolicy
from protocols.http.router import ProblemRouter, json_response
from protocols.http.routing import Unauthenticated, read_json

pytestmark = pytest.mark.anyio

UNUSED: Any = None  # a handler's dependency no test here reaches


def routed(routes: list[BaseRoute]) -> set[tuple[str, str]]:
    """(method, path template) of every route, HEAD (starlette's beside each GET) left out."""
    return {
        (method, route.path)
        for route in routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }


def documented(operations: tuple[Operation, ...]) -> set[tuple[str, str]]:
    return {(op.method, op.path) for op in operations}


def admin_app() -> AdminApp:
    operator = OperatorApi(UNUSED, ["acme"], lambda _: None, {})
    routes = [
        *operator_routes(operator),
        *trace_routes(TraceApi(UNUSED)),
        reload_route(UNUSED),
    ]
    return AdminApp(CollectorRegistry(), {}, routes=routes)


@pytest.mark.parametrize(
    ("routes", "operations"),
    [
        (admin_app().routes, admin.OPERATIONS),
        (PullApi({}, UNUSED).routes, pull.OPERATIONS),
        (
            customer_api(Accounts([], lambda _: 0.0), UNUSED, UNUSED, ApiLimits()).routes,
            api.OPERATIONS,
        ),
    ],
    ids=["admin", "pull", "customer-api"],
)
def test_every_documented_operation_has_a_route_and_every_route_is_documented(
    routes: list[BaseRoute], operations: tuple[Operation, ...]
) -> None:
    assert routed(routes) == documented(operations)


async def boom(request: Request) -> Response:
    raise RuntimeError("a bug")


async def limited(request: Request) -> Response:
    raise RateLimited("slow down", retry_after=2.5)


async def who(request: Request) -> Response:
    raise Unauthenticated("who are you")


async def echo(request: Request) -> Response:
    return json_response({"got": await read_json(request.receive)})


ROUTER = ProblemRouter(
    [
        Route("/boom", boom),
        Route("/limited", limited),
        Route("/who", who),
        Route("/echo", echo, methods=["POST"]),
    ]
)


async def request(app: Any, method: str, path: str, **kw: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        return await http.request(method, path, **kw)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "reason"),
    [
        ("GET", "/nowhere", None, 404, "not-found"),
        ("GET", "/echo", None, 405, "method-not-allowed"),
        ("POST", "/echo", b"{not json", 400, "bad-request"),
        ("GET", "/limited", None, 429, "rate-limited"),
        ("GET", "/who", None, 401, "unauthenticated"),
        ("GET", "/boom", None, 500, "internal-error"),
    ],
    ids=["no-route", "wrong-method", "bad-json", "gateway-error", "unauthenticated", "bug"],
)
async def test_every_error_leaves_as_problem_json(
    method: str, path: str, body: bytes | None, status: int, reason: str
) -> None:
    answer = await request(ROUTER, method, path, content=body)

    problem = answer.json()
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    assert problem["type"].endswith("/" + reason)
    assert problem["status"] == status


async def test_a_wrong_method_names_the_allowed_ones_and_a_401_its_scheme() -> None:
    wrong = await request(ROUTER, "GET", "/echo")
    who = await request(ROUTER, "GET", "/who")
    limited = await request(ROUTER, "GET", "/limited")

    assert wrong.headers["allow"] == "POST"
    assert who.headers["www-authenticate"] == "Bearer"
    assert limited.headers["retry-after"] == "3"


async def test_a_bug_is_a_500_whose_instance_names_the_log_line_not_the_code(
    caplog: pytest.LogCaptureFixture,
) -> None:
    answer = await request(ROUTER, "GET", "/boom")

    instance = answer.json()["instance"]
    assert instance.startswith("urn:uuid:")
    assert "a bug" not in answer.text
    assert any(instance in record.getMessage() for record in caplog.records)


async def test_a_trailing_slash_is_the_same_route() -> None:
    answer = await request(ROUTER, "POST", "/echo/", json={"a": 1})

    assert answer.json() == {"got": {"a": 1}}


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/endpoints/acme/enable", "POST"),
        ("DELETE", "/dead-letters", "GET, HEAD"),
        ("POST", "/threads/corr-1", "GET, HEAD"),
        ("POST", "/healthz", "GET, HEAD"),
    ],
)
async def test_an_admin_path_with_the_wrong_method_is_a_405_with_allow(
    method: str, path: str, allow: str
) -> None:
    answer = await request(admin_app(), method, path)

    assert answer.status_code == 405
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["allow"] == allow


class OneMessage:
    async def messages(self, partner_id: str, after: int, limit: int, /) -> list[PulledMessage]:
        return [PulledMessage(message_id="m-1", document_type="po", cursor=1, body=b"{}")]

    async def acknowledge(
        self, partner_id: str, /, *, up_to: int | None, message_ids: tuple[str, ...]
    ) -> int:
        return 0


async def test_reconfigure_swaps_the_pull_tokens_for_the_next_request() -> None:
    app = PullApi({"acme": PullPolicy(token=b"old", max_batch=5)}, OneMessage())

    async def pull_with(token: str) -> int:
        headers = {"authorization": f"Bearer {token}"}
        return (await request(app, "GET", "/partners/acme/messages", headers=headers)).status_code

    before = (await pull_with("old"), await pull_with("new"))
    app.reconfigure({"acme": PullPolicy(token=b"new", max_batch=5)})
    after = (await pull_with("old"), await pull_with("new"))

    assert before == (200, 401)
    assert after == (401, 200)
