"""The session's RabbitMQ node is real: durable queue, confirmed publish, consume back."""

from __future__ import annotations

import aio_pika
import pytest

pytestmark = pytest.mark.anyio


async def test_confirmed_publish_to_durable_queue_is_consumed_back(amqp_url: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        queue = await channel.declare_queue("test.node.roundtrip", durable=True)
        await queue.purge()
        confirmation = await channel.default_exchange.publish(
            aio_pika.Message(
                b'{"po": "4500001"}',
                message_id="m-1",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=queue.name,
            mandatory=True,
        )
        assert confirmation is not None  # a Basic.Ack from the broker, not a transient None
        incoming = await queue.get(timeout=5)
        await incoming.ack()
        assert incoming.body == b'{"po": "4500001"}'
        assert incoming.message_id == "m-1"
        assert incoming.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        await queue.delete(if_unused=False, if_empty=False)


async def test_unroutable_mandatory_publish_is_returned_not_silently_confirmed(
    amqp_url: str,
) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.declare_exchange("test.node.nowhere", "topic", durable=True)
        with pytest.raises(aio_pika.exceptions.DeliveryError):
            await exchange.publish(
                aio_pika.Message(b"x", message_id="m-unroutable"),
                routing_key="no.queue.bound",
                mandatory=True,
            )
