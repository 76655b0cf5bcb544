"""The queue consumer against a real RabbitMQ node: manual acks, requeue, reject, recovery."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aio_pika
import aiormq
import anyio
import pytest
from amqp_support import BrokerNames, queue_depth, read_queue
from test_amqp_publisher import CuttableProxy

from gateway.localbroker import LocalRabbitMQ
from protocols.amqp.consumer import Inbound, QueueConsumer, QueueSpec, Settlement

pytestmark = [pytest.mark.anyio, pytest.mark.rabbitmq]


@pytest.fixture
async def names(amqp_url: str) -> AsyncIterator[BrokerNames]:
    names = BrokerNames.unique("test.consumer")
    yield names
    await names.delete(amqp_url)


class Recorder:
    """A handler that records each delivery and answers from `answers` (then "ack")."""

    def __init__(self, *answers: Settlement) -> None:
        self.seen: list[Inbound] = []
        self._answers = list(answers)

    async def __call__(self, inbound: Inbound) -> Settlement:
        self.seen.append(inbound)
        return self._answers.pop(0) if self._answers else "ack"

    def bodies(self) -> list[bytes]:
        return [i.body for i in self.seen]


def spec(names: BrokerNames, **kw: int) -> QueueSpec:
    return QueueSpec(
        queue=names.queue,
        exchange=names.exchange,
        routing_keys=("purchase_order.*",),
        dead_letter_exchange=names.dead_letter_exchange,
        parking_lot=names.parking_lot,
        **kw,
    )


@asynccontextmanager
async def consuming(
    url: str, consumer_spec: QueueSpec, handler: Recorder
) -> AsyncIterator[QueueConsumer]:
    consumer = QueueConsumer(
        url,
        consumer_spec,
        handler,
        lanes=2,
        requeue_delay=0.05,
        reconnect_min=0.05,
        reconnect_max=0.2,
    )
    async with anyio.create_task_group() as tg:
        await tg.start(consumer.run)
        await until(lambda: consumer.statistics().consuming)
        yield consumer
        tg.cancel_scope.cancel()


async def until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.02)


async def publish(
    url: str, exchange: str, body: bytes, key: str = "purchase_order.released"
) -> None:
    """Publish as the ERP would: a plain aio-pika client, persistent, with a message id."""
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        target = await channel.get_exchange(exchange)
        await target.publish(
            aio_pika.Message(body, message_id=body.decode(), delivery_mode=2), routing_key=key
        )


async def test_delivery_is_acked_once_the_handler_answers(
    amqp_url: str, names: BrokerNames
) -> None:
    handler = Recorder()
    async with consuming(amqp_url, spec(names), handler) as consumer:
        await publish(amqp_url, names.exchange, b"m-1")
        await until(lambda: consumer.statistics().acked == 1)

    assert [(i.body, i.message_id, i.routing_key) for i in handler.seen] == [
        (b"m-1", "m-1", "purchase_order.released")
    ]
    assert await queue_depth(amqp_url, names.queue) == 0


async def test_requeued_delivery_comes_back_redelivered(amqp_url: str, names: BrokerNames) -> None:
    handler = Recorder("requeue")
    async with consuming(amqp_url, spec(names), handler) as consumer:
        await publish(amqp_url, names.exchange, b"m-1")
        await until(lambda: consumer.statistics().acked == 1)

    assert [(i.body, i.redelivered) for i in handler.seen] == [(b"m-1", False), (b"m-1", True)]


async def test_rejected_delivery_goes_to_the_parking_lot(amqp_url: str, names: BrokerNames) -> None:
    handler = Recorder("reject")
    async with consuming(amqp_url, spec(names), handler) as consumer:
        await publish(amqp_url, names.exchange, b"m-1")
        await until(lambda: consumer.statistics().rejected == 1)

    await until_depth(amqp_url, names.parking_lot, 1)
    [parked] = await read_queue(amqp_url, names.parking_lot)
    assert parked.body == b"m-1"


async def test_delivery_past_the_delivery_limit_goes_to_the_parking_lot(
    amqp_url: str, names: BrokerNames
) -> None:
    requeues: list[Settlement] = ["requeue"] * 10
    handler = Recorder(*requeues)
    async with consuming(amqp_url, spec(names, delivery_limit=2), handler):
        await publish(amqp_url, names.exchange, b"m-1")
        await until_depth(amqp_url, names.parking_lot, 1)

    assert handler.bodies() == [b"m-1"] * 3  # the first delivery and two redeliveries


async def test_handler_that_raises_gets_the_delivery_again(
    amqp_url: str, names: BrokerNames
) -> None:
    seen: list[bytes] = []

    async def flaky(inbound: Inbound) -> Settlement:
        seen.append(inbound.body)
        if len(seen) == 1:
            raise RuntimeError("a bug")
        return "ack"

    consumer = QueueConsumer(amqp_url, spec(names), flaky, lanes=1, requeue_delay=0.05)
    async with anyio.create_task_group() as tg:
        await tg.start(consumer.run)
        await until(lambda: consumer.statistics().consuming)
        await publish(amqp_url, names.exchange, b"m-1")
        await until(lambda: consumer.statistics().acked == 1)
        tg.cancel_scope.cancel()

    assert seen == [b"m-1", b"m-1"]
    assert consumer.statistics().handler_errors == 1


async def test_consumer_recovers_when_its_queue_is_deleted(
    amqp_url: str, names: BrokerNames
) -> None:
    handler = Recorder()
    async with consuming(amqp_url, spec(names), handler) as consumer:
        async with aiormq.connect(amqp_url) as connection:
            channel = await connection.channel()
            await channel.queue_delete(names.queue)
        await until(lambda: consumer.statistics().sessions == 2 and consumer.statistics().consuming)
        await publish(amqp_url, names.exchange, b"after")
        await until(lambda: consumer.statistics().acked == 1)

    assert handler.bodies() == [b"after"]


async def test_consumer_recovers_when_the_connection_drops(
    rabbitmq: LocalRabbitMQ, amqp_url: str, names: BrokerNames
) -> None:
    proxy = CuttableProxy(rabbitmq.port)
    handler = Recorder()
    async with anyio.create_task_group() as tg:
        await tg.start(proxy.run)
        url = f"amqp://guest:guest@127.0.0.1:{proxy.port}/%2F"
        async with consuming(url, spec(names), handler) as consumer:
            await publish(amqp_url, names.exchange, b"before")
            await until(lambda: consumer.statistics().acked == 1)
            proxy.cut()
            await until(
                lambda: consumer.statistics().sessions == 2 and consumer.statistics().consuming
            )
            await publish(amqp_url, names.exchange, b"after")
            await until(lambda: consumer.statistics().acked == 2)
        tg.cancel_scope.cancel()

    assert handler.bodies() == [b"before", b"after"]


async def test_unacked_deliveries_never_exceed_the_prefetch(
    amqp_url: str, names: BrokerNames
) -> None:
    release = anyio.Event()
    held: list[bytes] = []

    async def slow(inbound: Inbound) -> Settlement:
        held.append(inbound.body)
        await release.wait()
        return "ack"

    consumer = QueueConsumer(amqp_url, spec(names, prefetch=3), slow, lanes=3)
    async with anyio.create_task_group() as tg:
        await tg.start(consumer.run)
        await until(lambda: consumer.statistics().consuming)
        for n in range(6):
            await publish(amqp_url, names.exchange, f"m-{n}".encode())
        await until(lambda: len(held) == 3)
        await anyio.sleep(0.3)  # room for a fourth delivery, were the prefetch not kept
        assert len(held) == 3
        release.set()
        await until(lambda: consumer.statistics().acked == 6)
        tg.cancel_scope.cancel()


async def until_depth(url: str, queue: str, depth: int) -> None:
    with anyio.fail_after(15):
        while await queue_depth(url, queue) < depth:
            await anyio.sleep(0.05)
