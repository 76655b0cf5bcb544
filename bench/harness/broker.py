"""The scenario's RabbitMQ node and the sink queue every system under test publishes into.

One throwaway node per scenario run (`gateway.localbroker.LocalRabbitMQ`), shared by every
system in the run, so they all meet the same broker. The sink is a durable classic queue bound
to the events exchange with `#`: a persistent message confirmed into it is on disk, and its
depth counts what arrived. Between systems the sink is deleted and declared again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aio_pika
import anyio

from bench.harness.processes import Watch
from gateway.localbroker import LocalRabbitMQ

__all__ = ["EVENTS_EXCHANGE", "SINK_QUEUE", "Broker", "running_broker"]

EVENTS_EXCHANGE = "gateway.events"
SINK_QUEUE = "bench.sink"


class Broker:
    """A running node, with one management connection for the sink queue and memory alarms."""

    def __init__(self, node: LocalRabbitMQ, connection: aio_pika.abc.AbstractConnection) -> None:
        self.node = node
        self.connection = connection
        if node.process is None:
            raise RuntimeError("the node must be started before it is watched")
        self.watch = Watch("rabbitmq", node.process.pid)

    @property
    def url(self) -> str:
        return self.node.url

    async def reset_sink(self) -> None:
        """Declare the events exchange (if missing) and an empty sink queue bound with `#`."""
        async with self.connection.channel() as channel:
            exchange = await channel.declare_exchange(
                EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
            )
            await channel.queue_delete(SINK_QUEUE)
            queue = await channel.declare_queue(SINK_QUEUE, durable=True)
            await queue.bind(exchange, routing_key="#")

    async def sink_depth(self) -> int:
        """Return how many messages wait in the sink queue."""
        async with self.connection.channel() as channel:
            queue = await channel.declare_queue(SINK_QUEUE, passive=True)
            result = queue.declaration_result
            return int(result.message_count or 0)

    async def warm_up(self, count: int, body: bytes = b"{}" * 300, chunk: int = 256) -> None:
        """Publish `count` persistent messages through the sink, then empty it.

        A fresh node is markedly slower for its first few thousand confirms (its message store
        and schedulers warm up), which would handicap whichever system a scenario runs first.
        """
        async with self.connection.channel(publisher_confirms=True) as channel:
            exchange = await channel.get_exchange(EVENTS_EXCHANGE)
            for start in range(0, count, chunk):
                async with anyio.create_task_group() as tg:
                    for i in range(start, min(start + chunk, count)):
                        message = aio_pika.Message(
                            body,
                            message_id=f"warm-{i}",
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        )
                        tg.start_soon(exchange.publish, message, "bench.warm-up")
        await self.reset_sink()

    async def block_publishers(self, blocked: bool) -> None:
        """Raise (or clear) a memory alarm: the broker stops reading from publishing connections.

        The relay-drain scenario fills the gateway's outbox this way while the gateway runs.
        """
        watermark = "0" if blocked else "0.6"
        await anyio.to_thread.run_sync(
            lambda: self.node.ctl("rabbitmqctl", "set_vm_memory_high_watermark", watermark)
        )


@asynccontextmanager
async def running_broker(base: Path, warm_up: int = 0) -> AsyncIterator[Broker]:
    """Start a node under `base` for the block; destroy it (folder included) afterwards.

    `warm_up` messages go through the sink first (see `Broker.warm_up`).
    """
    node = LocalRabbitMQ(base)
    try:
        await anyio.to_thread.run_sync(node.start)
        connection = await aio_pika.connect(node.url)
        try:
            broker = Broker(node, connection)
            await broker.reset_sink()
            await broker.warm_up(warm_up)
            yield broker
        finally:
            with anyio.CancelScope(shield=True):
                await connection.close()
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(node.destroy)
