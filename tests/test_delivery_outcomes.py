"""Every channel says what an attempt came to as a delivery outcome, never in HTTP terms.

The webhook channel maps HTTP answers to outcomes in one place (`webhook_outcome`); the AMQP
channel (a real RabbitMQ) and the X12-file channel (a real store) answer without any status
code made up for them, and the attempt log keeps what each transport really said.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from itertools import pairwise
from pathlib import Path

import aio_pika
import anyio
import msgspec
import pytest

from actors.delivery import (
    Delivered,
    DeliveryChannel,
    DeliveryOutcome,
    Disable,
    PartnerCourier,
    Refused,
    RetryAfter,
)
from canonical import encode_envelope, new_envelope
from canonical.delivery import DeliveryAttempt, DeliveryRecord
from canonical.ids import new_message_id
from canonical.outbox import Acceptance, NewDelivery
from canonical.samples import sample_document
from canonical.x12 import X12Profile
from gateway.config.delivery import AmqpOutbound, DeliveryRules
from gateway.edi_delivery import X12FileDelivery
from gateway.outbound import delivery_policy, webhook_outcome
from gateway.outbound_amqp import ExchangeChannel
from gateway.store import Store
from protocols.http.egress import WebhookResponse

pytestmark = pytest.mark.anyio

PARTNER = "acme"
PROFILE = X12Profile(sender_id="DISTCO", receiver_id="ACMESUPPLY")
FAST = DeliveryRules(retry_schedule_s=(0.05,) * 5, jitter=0.0, breaker_failures=99)


def answer(status: int, retry_after_s: float | None = None) -> WebhookResponse:
    return WebhookResponse(status=status, retry_after_s=retry_after_s, head=b"h", latency_s=0.1)


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (answer(200), Delivered(latency_s=0.1, detail=b"h", status=200)),
        (answer(204), Delivered(latency_s=0.1, detail=b"h", status=204)),
        (answer(410), Disable(reason="410 Gone", latency_s=0.1, detail=b"h", status=410)),
        # Slow down: the endpoint is up, the wait it asks for is honoured.
        (
            answer(429, 7.0),
            RetryAfter(
                reason="HTTP 429", latency_s=0.1, delay_s=7.0, healthy=True, detail=b"h", status=429
            ),
        ),
        (
            answer(503, 7.0),
            RetryAfter(reason="HTTP 503", latency_s=0.1, delay_s=7.0, detail=b"h", status=503),
        ),
        # Retry-After is only honoured where it asks to slow down.
        (answer(500, 7.0), RetryAfter(reason="HTTP 500", latency_s=0.1, detail=b"h", status=500)),
        (answer(302), RetryAfter(reason="HTTP 302", latency_s=0.1, detail=b"h", status=302)),
        (answer(400), RetryAfter(reason="HTTP 400", latency_s=0.1, detail=b"h", status=400)),
    ],
)
def test_a_webhook_answer_maps_to_its_outcome(
    response: WebhookResponse, expected: DeliveryOutcome
) -> None:
    assert webhook_outcome(response) == expected


def test_every_channel_table_carries_the_one_set_of_delivery_rules() -> None:
    rules = DeliveryRules.__struct_fields__
    amqp = AmqpOutbound(exchange="acme.inbound", retry_schedule_s=(1.0,), breaker_failures=3)

    assert set(rules) <= set(AmqpOutbound.__struct_fields__)
    assert delivery_policy(PARTNER, amqp) == delivery_policy(
        PARTNER, DeliveryRules(retry_schedule_s=(1.0,), breaker_failures=3)
    )


def purchase_order_delivery(n: int) -> NewDelivery:
    document = sample_document("purchase_order", n)
    envelope = new_envelope(document, partner_id="distco", idempotency_key=f"po-{n}")
    return NewDelivery(
        partner_id=PARTNER,
        message_id=envelope.message_id,
        document_type="purchase_order",
        aggregate_key=f"po-{n}",
        correlation_id=envelope.correlation_id,
        body=encode_envelope(envelope),
    )


async def accept(store: Store, delivery: NewDelivery) -> None:
    key = new_message_id()
    await store.accept(
        Acceptance(
            partner_id=PARTNER,
            idempotency_key=key,
            body_hash=hashlib.sha256(key.encode()).digest(),
            response_status=202,
            response_body=b"{}",
            deliveries=(delivery,),
        )
    )


async def run_courier(
    store: Store,
    channel: DeliveryChannel,
    until: Callable[[], Awaitable[bool]],
    rules: DeliveryRules = FAST,
) -> PartnerCourier:
    """Run a courier over `channel` until `until()` holds (bounded); return it."""
    courier = PartnerCourier(
        delivery_policy(PARTNER, rules), store.deliveries, channel, idle_wait_s=0.05
    )
    async with anyio.create_task_group() as tg:
        await tg.start(courier.run)
        with anyio.fail_after(15):
            while not await until():
                await anyio.sleep(0.02)
        tg.cancel_scope.cancel()
    return courier


async def deliver_once(
    store: Store, channel: DeliveryChannel, delivery: NewDelivery
) -> tuple[DeliveryRecord, list[DeliveryAttempt]]:
    """Accept `delivery`, run a courier over `channel` until it is settled; its attempts."""
    await accept(store, delivery)

    async def settled() -> bool:
        (record,) = await store.deliveries.deliveries(partner_id=PARTNER)
        return record.state != "pending"

    await run_courier(store, channel, settled)
    (record,) = await store.deliveries.deliveries(partner_id=PARTNER)
    return record, await store.deliveries.attempts(record.id)


class Scripted:
    """A channel of no transport at all: answers the outcomes given, then the last forever."""

    def __init__(self, *outcomes: DeliveryOutcome) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[str] = []

    async def send(self, delivery: DeliveryRecord, timestamp: int) -> DeliveryOutcome:
        self.calls.append(delivery.message_id)
        return self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]

    async def aclose(self) -> None:
        pass


async def test_a_slow_down_outcome_is_honoured_and_never_opens_the_breaker(
    tmp_path: Path,
) -> None:
    busy = RetryAfter(reason="busy", latency_s=0.0, delay_s=0.3, healthy=True)
    channel = Scripted(busy, busy, busy, Delivered(latency_s=0.0, detail=b"taken"))
    # One failure would open the breaker for a minute: past the test's deadline.
    rules = msgspec.structs.replace(FAST, breaker_failures=1, breaker_cooldown_s=60.0)
    async with Store(tmp_path / "gateway.db") as store:
        await accept(store, purchase_order_delivery(1))

        async def delivered() -> bool:
            (record,) = await store.deliveries.deliveries(partner_id=PARTNER)
            return record.state == "delivered"

        courier = await run_courier(store, channel, delivered, rules)
        (record,) = await store.deliveries.deliveries(partner_id=PARTNER)
        attempts = await store.deliveries.attempts(record.id)

    assert [(a.status, a.error, a.response_head) for a in attempts] == [
        (None, "busy", b""),
        (None, "busy", b""),
        (None, "busy", b""),
        (None, None, b"taken"),
    ]
    # Each retry waited at least the 0.3 s asked for (the schedule alone says 0.05 s).
    gaps = [later.attempted_at - earlier.attempted_at for earlier, later in pairwise(attempts)]
    assert min(gaps) >= 0.3
    assert courier.statistics().breaker == "closed"


async def test_a_disable_outcome_disables_the_endpoint_and_keeps_the_message(
    tmp_path: Path,
) -> None:
    channel = Scripted(Disable(reason="mailbox closed", latency_s=0.0))
    async with Store(tmp_path / "gateway.db") as store:
        await accept(store, purchase_order_delivery(1))

        async def disabled() -> bool:
            return await store.deliveries.endpoint_disabled(PARTNER)

        await run_courier(store, channel, disabled)
        (record,) = await store.deliveries.deliveries(partner_id=PARTNER)
        letters = await store.dead_letters()

    assert record.state == "pending"
    assert "mailbox closed" in (record.reason or "")
    assert letters == []
    assert len(channel.calls) == 1


async def test_an_x12_file_delivery_is_logged_with_the_file_it_queued_and_no_status(
    tmp_path: Path,
) -> None:
    async with Store(tmp_path / "gateway.db") as store:
        channel = X12FileDelivery(store, PARTNER, PROFILE)
        record, attempts = await deliver_once(store, channel, purchase_order_delivery(1))

    assert record.state == "delivered"
    assert [(a.status, a.error, a.response_head) for a in attempts] == [
        (None, None, b"queued 850_000000001.x12")
    ]


async def test_a_document_x12_cannot_carry_is_dead_at_once_with_no_status(tmp_path: Path) -> None:
    notice = new_envelope(sample_document("exception"), partner_id="distco", idempotency_key="x")
    delivery = NewDelivery(
        partner_id=PARTNER,
        message_id=notice.message_id,
        document_type="exception",
        aggregate_key="x",
        correlation_id=notice.correlation_id,
        body=encode_envelope(notice),
    )
    async with Store(tmp_path / "gateway.db") as store:
        channel = X12FileDelivery(store, PARTNER, PROFILE)
        record, attempts = await deliver_once(store, channel, delivery)

    assert record.state == "dead"
    assert [a.status for a in attempts] == [None]
    assert (record.reason or "").startswith("x12")


@contextlib.asynccontextmanager
async def exchange_channel(url: str, exchange: str) -> AsyncIterator[ExchangeChannel]:
    channel = ExchangeChannel(
        PARTNER,
        AmqpOutbound(exchange=exchange, connect_timeout_s=2.0),
        url,
        reconnect_min_s=0.05,
        reconnect_max_s=0.1,
    )
    try:
        yield channel
    finally:
        await channel.aclose()


def record_of(delivery: NewDelivery) -> DeliveryRecord:
    return DeliveryRecord(
        id=1,
        state="pending",
        attempts=0,
        next_attempt_at=0.0,
        created_at=0.0,
        **{f: getattr(delivery, f) for f in NewDelivery.__struct_fields__},
    )


@pytest.mark.rabbitmq
async def test_an_amqp_channel_answers_delivered_and_refused_with_no_http_status(
    amqp_url: str,
) -> None:
    exchange = f"acme.outcomes.{uuid.uuid4().hex[:8]}"
    async with exchange_channel(amqp_url, exchange) as channel:
        unroutable = await channel.send(record_of(purchase_order_delivery(1)), 0)
        async with await aio_pika.connect(amqp_url) as connection:
            broker = await connection.channel()
            topic = await broker.declare_exchange(exchange, "topic", durable=True)
            queue = await broker.declare_queue(exclusive=True)
            await queue.bind(topic, "#")
            confirmed = await channel.send(record_of(purchase_order_delivery(2)), 0)
            await topic.delete(if_unused=False)

    assert isinstance(confirmed, Delivered)
    assert (confirmed.status, confirmed.detail) == (None, b"confirmed")
    assert isinstance(unroutable, Refused)
    assert unroutable.status == 312  # AMQP's own NO_ROUTE code, not an HTTP one
    assert "NO_ROUTE" in unroutable.reason


async def test_an_amqp_channel_with_no_broker_answers_retry_with_no_status() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # a port nothing listens on
        port = sock.getsockname()[1]
    async with exchange_channel(f"amqp://gw:gw@127.0.0.1:{port}/", "acme.inbound") as channel:
        outcome = await channel.send(record_of(purchase_order_delivery(1)), 0)

    assert isinstance(outcome, RetryAfter)
    assert (outcome.status, outcome.delay_s, outcome.healthy) == (None, None, False)
