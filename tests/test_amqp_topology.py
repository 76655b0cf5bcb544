"""The gateway's topology on a real RabbitMQ node: idempotent declares, dead letters that land."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiormq
import anyio
import pytest
from aiormq import spec
from amqp_support import BrokerNames, queue_depth

from gateway.localbroker import LocalRabbitMQ
from protocols.amqp import declare_consumer_queue, declare_topology

pytestmark = [pytest.mark.anyio, pytest.mark.rabbitmq]


@pytest.fixture
async def names(amqp_url: str) -> AsyncIterator[BrokerNames]:
    names = BrokerNames.unique("test.topology")
    yield names
    await names.delete(amqp_url)


async def declare_all(url: str, names: BrokerNames, *, delivery_limit: int = 20) -> None:
    async with aiormq.connect(url) as connection:
        channel = await connection.channel()
        await declare_topology(
            channel,
            events_exchange=names.exchange,
            dead_letter_exchange=names.dead_letter_exchange,
            parking_lot=names.parking_lot,
        )
        await declare_consumer_queue(
            channel,
            names.queue,
            bindings=["purchase_order.*"],
            exchange=names.exchange,
            dead_letter_exchange=names.dead_letter_exchange,
            delivery_limit=delivery_limit,
        )


async def publish_one(url: str, names: BrokerNames, message_id: str) -> None:
    async with aiormq.connect(url) as connection:
        channel = await connection.channel()
        await channel.basic_publish(
            b"{}",
            exchange=names.exchange,
            routing_key="purchase_order.acme",
            properties=spec.Basic.Properties(message_id=message_id, delivery_mode=2),
            mandatory=True,
        )


async def take_one(url: str, queue: str, *, requeue: bool) -> str:
    """Get one message from `queue` and reject it; return its message id."""
    async with aiormq.connect(url) as connection:
        channel = await connection.channel()
        with anyio.fail_after(10):
            while True:
                got = await channel.basic_get(queue)
                if isinstance(got.delivery, spec.Basic.GetOk):
                    break
                await anyio.sleep(0.05)
        assert got.delivery_tag is not None
        await channel.basic_reject(got.delivery_tag, requeue=requeue)
        return got.header.properties.message_id or ""


async def parked_message_ids(url: str, names: BrokerNames, expected: int) -> list[str]:
    """Wait until the parking lot holds `expected` messages (dead-lettering is asynchronous)."""
    with anyio.fail_after(10):
        while await queue_depth(url, names.parking_lot) < expected:
            await anyio.sleep(0.05)
    async with aiormq.connect(url) as connection:
        channel = await connection.channel()
        ids = []
        for _ in range(expected):
            got = await channel.basic_get(names.parking_lot, no_ack=True)
            ids.append(got.header.properties.message_id or "")
        return ids


async def test_topology_is_declared_again_without_error(amqp_url: str, names: BrokerNames) -> None:
    await declare_all(amqp_url, names)
    await declare_all(amqp_url, names)  # what every reconnect does

    await publish_one(amqp_url, names, "m-again")
    assert await queue_depth(amqp_url, names.queue) == 1


async def test_consumer_queue_is_a_quorum_queue_with_its_bounds(
    amqp_url: str, rabbitmq: LocalRabbitMQ, names: BrokerNames
) -> None:
    await declare_all(amqp_url, names, delivery_limit=7)

    listing = rabbitmq.ctl(
        "rabbitmqctl", "list_queues", "name", "type", "arguments", "--formatter", "json", "-q"
    )
    queue = next(q for q in json.loads(listing) if q["name"] == names.queue)
    assert queue["type"] == "quorum"
    assert {name: value for name, _, value in queue["arguments"]} == {
        "x-queue-type": "quorum",
        "x-delivery-limit": 7,
        "x-dead-letter-exchange": names.dead_letter_exchange,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
        "x-max-length": 1_000_000,
    }


async def test_message_rejected_by_a_consumer_lands_in_the_parking_lot(
    amqp_url: str, names: BrokerNames
) -> None:
    await declare_all(amqp_url, names)
    await publish_one(amqp_url, names, "m-rejected")

    assert await take_one(amqp_url, names.queue, requeue=False) == "m-rejected"

    assert await parked_message_ids(amqp_url, names, 1) == ["m-rejected"]


async def test_message_past_its_delivery_limit_lands_in_the_parking_lot(
    amqp_url: str, names: BrokerNames
) -> None:
    await declare_all(amqp_url, names, delivery_limit=1)
    await publish_one(amqp_url, names, "m-poison")

    await take_one(amqp_url, names.queue, requeue=True)  # first delivery
    await take_one(amqp_url, names.queue, requeue=True)  # second: past the limit of 1

    assert await parked_message_ids(amqp_url, names, 1) == ["m-poison"]
    assert await queue_depth(amqp_url, names.queue) == 0
