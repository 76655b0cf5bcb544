"""serve(): uvicorn inside the test's own event loop, started and stopped by a task group."""

from __future__ import annotations

import resource
import signal
from functools import partial
from typing import Any

import anyio
import httpx
import pytest
from anyio.abc import TaskStatus

from protocols.http.asgi import ASGIApp, Receive, Scope, Send, send_response
from protocols.http.guard import ListenerLimits
from protocols.http.server import FD_RESERVE, serve

pytestmark = pytest.mark.anyio

# A hang guard, not a timing assertion: a broken shutdown fails here instead of at pytest-timeout.
HANG_GUARD = 15


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        await send_response(send, 200, [(b"content-type", b"text/plain")], b"hello")


class StoppableServer:
    """Runs serve() in its own cancel scope so a test can stop the server and carry on."""

    def __init__(self) -> None:
        self.scope = anyio.CancelScope()

    async def run(self, app: ASGIApp, *, task_status: TaskStatus[int], **options: Any) -> None:
        with self.scope:
            await serve(app, host="127.0.0.1", port=0, task_status=task_status, **options)


async def test_port_zero_reports_the_port_the_server_listens_on() -> None:
    async with anyio.create_task_group() as task_group:
        port = await task_group.start(StoppableServer().run, hello)
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/")
        task_group.cancel_scope.cancel()

    assert port != 0
    assert response.text == "hello"


async def test_cancelled_serve_returns_only_after_the_request_in_flight_is_answered() -> None:
    entered, release = anyio.Event(), anyio.Event()
    events: list[str] = []

    async def slow(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            entered.set()
            await release.wait()
            await send_response(send, 200, [(b"content-type", b"text/plain")], b"finished")
            events.append("answered")

    async def run_server(*, task_status: TaskStatus[int]) -> None:
        await server.run(slow, task_status=task_status)
        events.append("serve returned")

    responses: list[httpx.Response] = []
    server = StoppableServer()
    with anyio.fail_after(HANG_GUARD):
        async with anyio.create_task_group() as task_group:
            port = await task_group.start(run_server)

            async def request() -> None:
                async with httpx.AsyncClient() as client:
                    responses.append(await client.get(f"http://127.0.0.1:{port}/"))

            task_group.start_soon(request)
            await entered.wait()
            server.scope.cancel()
            # Let every task run until it waits, twice: the first wait can catch serve() in
            # its own task group's exit. A serve() that does not drain has returned by now.
            await anyio.wait_all_tasks_blocked()
            await anyio.wait_all_tasks_blocked()
            release.set()

    assert events == ["answered", "serve returned"]
    assert [r.text for r in responses] == ["finished"]


async def test_cancelled_serve_closes_the_port() -> None:
    async with anyio.create_task_group() as task_group:
        port = await task_group.start(StoppableServer().run, hello)
        task_group.cancel_scope.cancel()

    with pytest.raises(OSError, match="connection attempts failed"):
        await anyio.connect_tcp("127.0.0.1", port)


async def test_shutdown_gives_up_on_a_request_that_never_finishes() -> None:
    entered = anyio.Event()

    async def stuck(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            entered.set()
            await anyio.sleep_forever()

    server = StoppableServer()
    statuses: list[int] = []
    with anyio.fail_after(HANG_GUARD):
        async with anyio.create_task_group() as task_group:
            port = await task_group.start(partial(server.run, stuck, shutdown_timeout=0.5))

            async def request() -> None:
                async with httpx.AsyncClient() as client:
                    statuses.append((await client.get(f"http://127.0.0.1:{port}/")).status_code)

            task_group.start_soon(request)
            await entered.wait()
            server.scope.cancel()

    # uvicorn cancels the stuck handler at the deadline and answers 500 for it.
    assert statuses == [500]


async def test_serving_leaves_the_process_signal_handlers_alone() -> None:
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    async with anyio.create_task_group() as task_group:
        await task_group.start(StoppableServer().run, hello)
        during = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
        task_group.cancel_scope.cancel()

    assert during == before


async def test_an_address_that_cannot_be_bound_raises_before_started() -> None:
    async with anyio.create_task_group() as task_group:
        port = await task_group.start(StoppableServer().run, hello)
        with pytest.raises(OSError, match="in use"):
            await task_group.start(partial(serve, hello, host="127.0.0.1", port=port))
        task_group.cancel_scope.cancel()


async def test_shutdown_closes_connections_without_a_complete_head_at_once() -> None:
    # An idle connection and one halfway through its head: neither holds a request in flight,
    # so neither may hold up the shutdown until its head deadline.
    server = StoppableServer()
    returned = anyio.Event()

    async def run_server(*, task_status: TaskStatus[int]) -> None:
        await server.run(hello, task_status=task_status, limits=ListenerLimits(head_timeout_s=60))
        returned.set()

    with anyio.fail_after(HANG_GUARD):
        async with anyio.create_task_group() as task_group:
            port = await task_group.start(run_server)
            idle = await anyio.connect_tcp("127.0.0.1", port)
            halfway = await anyio.connect_tcp("127.0.0.1", port)
            async with idle, halfway:
                await halfway.send(b"GET / HTTP/1.1\r\nhost: x\r\n")
                await anyio.wait_all_tasks_blocked()
                started = anyio.current_time()
                server.scope.cancel()
                await returned.wait()
                took = anyio.current_time() - started
                for stream in (idle, halfway):
                    with pytest.raises(anyio.EndOfStream):
                        await stream.receive()

    assert took < 2


async def test_a_connection_ceiling_over_the_descriptor_limit_is_lowered_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    limits = ListenerLimits(max_connections=soft + 1)
    async with anyio.create_task_group() as task_group:
        await task_group.start(partial(StoppableServer().run, hello, limits=limits))
        task_group.cancel_scope.cancel()

    assert f"max_connections {soft + 1} lowered to {soft - FD_RESERVE}" in caplog.text
