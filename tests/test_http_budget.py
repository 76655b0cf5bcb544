"""Bytes in flight: the byte budget on its own, then the ingress waiting for it on loopback."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest
from anyio import wait_all_tasks_blocked
from standardwebhooks import Webhook

from protocols.http.budget import BodyBudget, ByteBudget, Overloaded
from protocols.http.contract import AcceptedResponse, IngressPolicy, WebhookRequest
from protocols.http.ingress import WebhookIngress
from protocols.http.server import serve
from protocols.http.signatures import decode_whsec

pytestmark = pytest.mark.anyio

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
LIMIT = 1024


# The budget alone


async def test_takes_that_fit_never_wait() -> None:
    budget = ByteBudget(10)

    await budget.take(6)
    await budget.take(4)

    assert (budget.taken, budget.waiting) == (10, 0)


async def test_waiters_are_let_in_first_come_first_served_as_room_is_given_back() -> None:
    budget = ByteBudget(10)
    await budget.take(8)
    order: list[str] = []

    async def take(name: str, size: int) -> None:
        await budget.take(size)
        order.append(name)

    async with anyio.create_task_group() as tg:
        tg.start_soon(take, "large", 5)
        await wait_all_tasks_blocked()
        tg.start_soon(take, "small", 2)  # would fit now, but waits behind the large one
        await wait_all_tasks_blocked()
        assert (order, budget.waiting) == ([], 2)
        budget.give(8)

    assert order == ["large", "small"]
    assert budget.taken == 7


async def test_a_waiter_cancelled_takes_nothing_and_lets_the_next_in() -> None:
    budget = ByteBudget(10)
    await budget.take(9)
    got: list[int] = []

    async def take(size: int) -> None:
        await budget.take(size)
        got.append(size)

    async with anyio.create_task_group() as tg:
        async with anyio.create_task_group() as large:
            large.start_soon(take, 8)
            await wait_all_tasks_blocked()
            tg.start_soon(take, 1)  # would fit, but waits behind the large one
            await wait_all_tasks_blocked()
            assert (got, budget.waiting) == ([], 2)
            large.cancel_scope.cancel()  # e.g. its wait ran out

    assert got == [1]
    assert (budget.taken, budget.waiting) == (10, 0)


async def test_a_take_larger_than_the_budget_is_a_bug() -> None:
    with pytest.raises(ValueError, match="cannot take 11 bytes of a budget of 10"):
        await ByteBudget(10).take(11)


async def test_no_room_within_the_wait_is_overloaded_and_gives_back_the_partners_room() -> None:
    budget = BodyBudget(total=4096, per_partner=4096, wait_s=0.05)
    await budget.take("globex", 3000)

    with pytest.raises(Overloaded) as refused:
        await budget.take("acme", 2000)  # acme's own room is free; the whole is not

    assert refused.value.status == 503
    assert refused.value.retry_after == 0.05
    assert "all partners'" in refused.value.detail
    assert budget.taken == 3000
    await budget.take("acme", 1096)  # acme's room was given back: the rest is all there
    assert budget.taken == 4096


# The ingress waiting for room, served by uvicorn on loopback


class Directory:
    def __init__(self) -> None:
        policy = IngressPolicy(
            keys=(decode_whsec(SECRET),),
            max_body_bytes=LIMIT,
            allowed_documents=frozenset({"asn"}),
        )
        self.policies = {"acme": policy, "globex": policy}

    def lookup(self, partner_id: str, /) -> IngressPolicy | None:
        return self.policies.get(partner_id)


class HoldingAcceptor:
    """Accepts once `release` is set: requests it holds keep their room meanwhile."""

    def __init__(self) -> None:
        self.release = anyio.Event()
        self.holding = 0

    async def accept(self, request: WebhookRequest, /) -> AcceptedResponse:
        self.holding += 1
        await self.release.wait()
        self.holding -= 1
        return AcceptedResponse(status=202, body=b"{}")


def signed(body: bytes) -> dict[str, str]:
    now = dt.datetime.now(tz=dt.UTC)
    return {
        "content-type": "application/json",
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(SECRET).sign("msg_1", now, body.decode()),
    }


BODY = b'{"pad":"' + b"x" * (LIMIT - 10) + b'"}'


@pytest.fixture
async def served() -> AsyncIterator[tuple[httpx.AsyncClient, HoldingAcceptor, BodyBudget]]:
    acceptor = HoldingAcceptor()
    budget = BodyBudget(total=4 * LIMIT, per_partner=2 * LIMIT, wait_s=0.3)
    app = WebhookIngress(Directory(), acceptor, budget=budget)
    async with anyio.create_task_group() as tg:
        port = await tg.start(_serve, app)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client, acceptor, budget
        acceptor.release.set()
        tg.cancel_scope.cancel()


async def _serve(app: WebhookIngress, *, task_status: Any) -> None:
    await serve(app, host="127.0.0.1", port=0, task_status=task_status)


async def until(condition: Any) -> None:
    with anyio.fail_after(5):
        while not condition():
            await anyio.sleep(0.01)


async def test_a_partner_past_its_bytes_in_flight_waits_then_gets_503_while_others_go_on(
    served: tuple[httpx.AsyncClient, HoldingAcceptor, BodyBudget],
) -> None:
    client, acceptor, budget = served
    answers: list[httpx.Response] = []

    async def post(partner: str) -> None:
        response = await client.post(f"/webhooks/{partner}/asn", content=BODY, headers=signed(BODY))
        answers.append(response)

    async with anyio.create_task_group() as tg:
        tg.start_soon(post, "acme")
        tg.start_soon(post, "acme")
        await until(lambda: acceptor.holding == 2)  # acme's room is all taken
        refused = await client.post("/webhooks/acme/asn", content=BODY, headers=signed(BODY))
        tg.start_soon(post, "globex")  # another partner has room of its own
        await until(lambda: acceptor.holding == 3)
        assert budget.taken == 3 * LIMIT
        acceptor.release.set()

    assert refused.status_code == 503
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["type"].endswith("/overloaded")
    assert "this partner's" in refused.json()["detail"]
    assert [a.status_code for a in answers] == [202, 202, 202]
    assert budget.taken == 0


async def test_a_chunked_body_takes_its_partners_whole_limit(
    served: tuple[httpx.AsyncClient, HoldingAcceptor, BodyBudget],
) -> None:
    client, acceptor, budget = served

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"a":'
        yield b"1}"

    async with anyio.create_task_group() as tg:
        tg.start_soon(
            lambda: client.post("/webhooks/acme/asn", content=chunks(), headers=signed(b'{"a":1}'))
        )
        await until(lambda: acceptor.holding == 1)
        assert budget.taken == LIMIT  # not the 7 bytes it turned out to have
        acceptor.release.set()
    assert budget.taken == 0


async def test_room_is_given_back_whatever_the_answer(
    served: tuple[httpx.AsyncClient, HoldingAcceptor, BodyBudget],
) -> None:
    client, acceptor, budget = served
    acceptor.release.set()
    too_long = b" " * (2 * LIMIT)

    async def endless() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b" " * 512

    forged = {**signed(BODY), "webhook-signature": "v1,AAAA"}
    statuses = [
        (await client.post("/webhooks/acme/asn", content=BODY, headers=signed(BODY))).status_code,
        (await client.post("/webhooks/acme/asn", content=BODY, headers=forged)).status_code,
        (
            await client.post("/webhooks/acme/asn", content=endless(), headers=signed(b""))
        ).status_code,
        (
            await client.post("/webhooks/acme/asn", content=too_long, headers=signed(too_long))
        ).status_code,
    ]

    assert statuses == [202, 401, 413, 413]
    assert budget.taken == 0


async def test_room_is_given_back_when_the_client_leaves_mid_body() -> None:
    budget = BodyBudget(total=4 * LIMIT, per_partner=2 * LIMIT, wait_s=0.3)
    app = WebhookIngress(Directory(), HoldingAcceptor(), budget=budget)
    messages = iter(
        [{"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.disconnect"}]
    )

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: Any) -> None:
        raise AssertionError("nobody is left to answer")

    headers = [(b"content-type", b"application/json"), (b"content-length", b"100")]
    scope = {"type": "http", "method": "POST", "path": "/webhooks/acme/asn", "headers": headers}
    await app(scope, receive, send)

    assert budget.taken == 0
