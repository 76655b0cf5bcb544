"""A partner's webhook endpoint for the delivery tests: a real ASGI app served on loopback.

It records every call (arrival time, webhook-id, body, whether the Standard Webhooks signature
verified with the reference library) and answers from a script the test sets and may change.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial

import anyio
from configkit import webhook
from standardwebhooks import Webhook, WebhookVerificationError

from actors.delivery import OutboundDelivery
from canonical.ids import new_message_id
from canonical.outbox import Acceptance, NewDelivery
from gateway.config import PartnerConfig, Secret
from gateway.config.delivery import WebhookOutbound
from gateway.outbound import build_outbound
from gateway.store import Store
from protocols.http.asgi import Receive, Scope, Send, read_body, send_response
from protocols.http.egress import EgressClient
from protocols.http.server import serve

Answer = tuple[int, dict[str, str], bytes]
OK: Answer = (200, {}, b"ok")
# Short enough for tests, never zero: "immediately" would turn a failing endpoint into a loop.
FAST_SCHEDULE = (0.05, 0.05, 0.05, 0.05, 0.05)


@dataclass(frozen=True)
class Call:
    at: float
    message_id: str
    body: bytes
    verified: bool
    host: str
    traceparent: str | None = None


@dataclass
class Receiver:
    """Answers `script(call_number)` (1-based); records every call it gets."""

    script: Callable[[int], Awaitable[Answer]]
    secret: Secret = field(default_factory=Secret.generate)
    calls: list[Call] = field(default_factory=list)
    answered: list[tuple[str, int]] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive, limit=1 << 24)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        try:
            Webhook(self.secret.reveal()).verify(body, headers)
            verified = True
        except WebhookVerificationError:
            verified = False
        message_id = headers.get("webhook-id", "")
        host = headers.get("host", "")
        traceparent = headers.get("traceparent")
        self.calls.append(Call(time.time(), message_id, body, verified, host, traceparent))
        status, extra, text = await self.script(len(self.calls))
        await send_response(
            send, status, [(k.encode(), v.encode()) for k, v in extra.items()], text
        )
        self.answered.append((message_id, status))

    def delivered(self) -> list[str]:
        """The message ids answered with 2xx, in order."""
        return [m for m, status in self.answered if 200 <= status < 300]


def answering(*answers: Answer, then: Answer = OK) -> Callable[[int], Awaitable[Answer]]:
    """A script that gives `answers` in turn, then `then` forever."""

    async def script(n: int) -> Answer:
        return answers[n - 1] if n <= len(answers) else then

    return script


async def hang(n: int) -> Answer:
    await anyio.sleep_forever()
    raise AssertionError("unreachable")


def deliveries_for(partner: str, aggregates: list[str]) -> Acceptance:
    """One acceptance carrying one delivery per aggregate key listed, in that order."""
    items = tuple(
        NewDelivery(
            partner_id=partner,
            message_id=new_message_id(),
            document_type="purchase_order",
            aggregate_key=aggregate,
            correlation_id=f"corr-{i}",
            body=b'{"n": %d, "aggregate": "%s"}' % (i, aggregate.encode()),
        )
        for i, aggregate in enumerate(aggregates)
    )
    key = new_message_id()
    return Acceptance(
        partner_id=partner,
        idempotency_key=key,
        body_hash=hashlib.sha256(key.encode()).digest(),
        response_status=202,
        response_body=b"{}",
        deliveries=items,
    )


@dataclass
class Outbound:
    store: Store
    delivery: OutboundDelivery

    async def accept(self, acceptance: Acceptance) -> list[str]:
        await self.store.accept(acceptance)
        self.delivery.wake(acceptance.partner_id)
        return [d.message_id for d in acceptance.deliveries]

    async def states(self, partner: str) -> list[str]:
        return [d.state for d in await self.store.deliveries.deliveries(partner_id=partner)]

    async def until(self, partner: str, wanted: set[str], deadline: float = 15) -> None:
        """Wait until every delivery of `partner` is in a state in `wanted` (bounded)."""
        with anyio.fail_after(deadline):
            while not set(await self.states(partner)) <= wanted:
                await anyio.sleep(0.02)


@contextlib.asynccontextmanager
async def outbound(
    db: str, receivers: dict[str, Receiver], **options: object
) -> AsyncIterator[Outbound]:
    """A store, an egress pool, each receiver on a loopback port, and the partners' couriers."""
    settings = {
        "retry_schedule_s": FAST_SCHEDULE,
        "jitter": 0.0,
        "allow_networks": ("127.0.0.0/8",),
        **options,
    }
    async with Store(db) as store, EgressClient() as client, anyio.create_task_group() as tg:
        partners = []
        for partner_id, receiver in receivers.items():
            port = await tg.start(
                partial(serve, receiver, host="127.0.0.1", port=0, shutdown_timeout=0.2)
            )
            partners.append(
                PartnerConfig(
                    id=partner_id,
                    name=partner_id,
                    secrets=(Secret.generate(),),
                    outbound=WebhookOutbound(
                        url=f"http://localhost:{port}/hooks",
                        secret=receiver.secret,
                        **settings,  # type: ignore[arg-type]
                    ),
                )
            )
        delivery = build_outbound(partners, store.deliveries, client, idle_wait_s=0.05)
        await tg.start(delivery.run)
        yield Outbound(store, delivery)
        tg.cancel_scope.cancel()


@contextlib.asynccontextmanager
async def serving(receiver: Receiver) -> AsyncIterator[str]:
    """Serve `receiver` on a loopback port until the block ends; yield its webhook URL."""
    async with anyio.create_task_group() as tg:
        port = await tg.start(
            partial(serve, receiver, host="127.0.0.1", port=0, shutdown_timeout=0.2)
        )
        yield f"http://localhost:{port}/hooks"
        tg.cancel_scope.cancel()


@contextlib.asynccontextmanager
async def order_desk(receiver: Receiver) -> AsyncIterator[str]:
    """Serve `receiver` on 127.0.0.1 until the block ends; yield the `[partners.outbound]`
    table of a partner whose purchase orders it takes."""
    async with anyio.create_task_group() as tg:
        port = await tg.start(partial(serve, receiver, host="127.0.0.1", port=0))
        yield webhook(f"http://127.0.0.1:{port}/hooks/orders", receiver.secret)
        tg.cancel_scope.cancel()


def outbound_toml(url: str, secret: Secret, schedule: tuple[float, ...] = FAST_SCHEDULE) -> str:
    """A partner's `[partners.outbound]` table for `url`, retrying fast, circuit kept closed."""
    return (
        f'[partners.outbound]\nurl = "{url}"\nsecret = "{secret.reveal()}"\n'
        f"retry_schedule_s = {list(schedule)}\njitter = 0.0\nbreaker_failures = 99\n"
        'allow_networks = ["127.0.0.0/8"]\n'
    )
