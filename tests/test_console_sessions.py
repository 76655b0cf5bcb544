"""The console guard's sessions, on the guard alone: expiry, the bound, logout."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gateway.console.guard import COOKIE, ConsoleGuard

pytestmark = pytest.mark.anyio

TOKEN = b"s3cret-token"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The app behind the guard: answers 200 with the CSRF token it was handed."""
    body = scope["console.csrf"].encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def client(guard: ConsoleGuard) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=guard)
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")


async def login(http: httpx.AsyncClient) -> str:
    answer = await http.post("/console/login", data={"token": TOKEN.decode()})
    assert answer.status_code == 303
    return answer.cookies[COOKIE]


async def test_a_session_ends_after_its_time() -> None:
    clock = Clock()
    guard = ConsoleGuard(echo, token=TOKEN, allowed_hosts=(), session_ttl_s=60, clock=clock)
    async with client(guard) as http:
        await login(http)
        fresh = await http.get("/console/")
        clock.now += 61
        stale = await http.get("/console/")

    assert fresh.status_code == 200
    assert (stale.status_code, stale.headers["location"]) == (303, "/console/login")


async def test_past_the_bound_the_oldest_session_goes_first() -> None:
    guard = ConsoleGuard(echo, token=TOKEN, allowed_hosts=(), max_sessions=2, clock=Clock())
    async with client(guard) as first, client(guard) as second, client(guard) as third:
        for http in (first, second, third):
            await login(http)
        answers = [(await h.get("/console/")).status_code for h in (first, second, third)]

    assert answers == [303, 200, 200]


async def test_logout_ends_the_session() -> None:
    guard = ConsoleGuard(echo, token=TOKEN, allowed_hosts=(), clock=Clock())
    async with client(guard) as http:
        await login(http)
        csrf = (await http.get("/console/")).text
        out = await http.post("/console/logout", json={}, headers={"x-console-csrf": csrf})
        after = await http.get("/console/")

    assert out.status_code == 303
    assert after.status_code == 303


async def test_a_csrf_token_of_one_session_is_refused_in_another() -> None:
    guard = ConsoleGuard(echo, token=TOKEN, allowed_hosts=(), clock=Clock())
    async with client(guard) as mine, client(guard) as theirs:
        await login(mine)
        await login(theirs)
        their_token = (await theirs.get("/console/")).text
        answer = await mine.post(
            "/console/api/anything", json={}, headers={"x-console-csrf": their_token}
        )

    assert answer.status_code == 403


async def test_past_the_wrong_token_bound_a_login_is_refused_until_the_window_ends() -> None:
    clock = Clock()
    guard = ConsoleGuard(echo, token=TOKEN, allowed_hosts=(), login_failures=3, clock=clock)
    async with client(guard) as http:
        wrong = [
            (await http.post("/console/login", data={"token": "guess"})).status_code
            for _ in range(4)
        ]
        right_too_soon = await http.post("/console/login", data={"token": TOKEN.decode()})
        clock.now += 61
        right_later = await http.post("/console/login", data={"token": TOKEN.decode()})

    assert wrong == [401, 401, 401, 429]
    assert right_too_soon.status_code == 429
    assert "retry-after" in right_too_soon.headers
    assert right_later.status_code == 303
