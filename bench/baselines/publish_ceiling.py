"""The broker ceiling: publish N persistent messages with a sliding window of confirms.

What a client library gets out of RabbitMQ when it does nothing else: no store to read, no rows
to mark. Up to `--window` publishes await their confirm at once (the gateway's
`confirm_window`); each is persistent and mandatory, carries a message id, and goes to the
gateway's topic exchange, so the relay and this ceiling pay the broker the same price. The body
is a canonical envelope around the bench's purchase order: the bytes the relay publishes.

    python -m bench.baselines.publish_ceiling --amqp-url amqp://... --client aiormq --count 200000

Prints one JSON line: {"client", "count", "window", "confirmed", "nacked", "returned",
"seconds", "per_s"}; `seconds` runs from the first publish to the last confirm.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Awaitable, Callable, Sequence

import aio_pika
import aiormq
import anyio
import msgspec
from aiormq.abc import ConfirmationFrameType
from pamqp.commands import Basic

from bench.harness.documents import order_template
from canonical.codec import decode_document, encode_envelope
from canonical.envelope import new_envelope

__all__ = ["envelope_body", "main", "publish"]

EXCHANGE = "gateway.events"
ROUTING_KEY = "purchase_order.bench-p00"


class Outcome(msgspec.Struct, kw_only=True):
    client: str
    count: int
    window: int
    confirmed: int = 0
    nacked: int = 0
    returned: int = 0
    seconds: float = 0.0
    per_s: float = 0.0


def envelope_body(seq: int = 1, partner: str = "bench-p00") -> bytes:
    """Return the envelope JSON the relay would publish for the bench's order `seq`."""
    document = decode_document("purchase_order", order_template().body(seq))
    return encode_envelope(
        new_envelope(document, partner_id=partner, idempotency_key=f"msg_bench_{seq}")
    )


Publish = Callable[[int], Awaitable[object]]


async def _windowed(publish_one: Publish, outcome: Outcome) -> None:
    window = anyio.Semaphore(outcome.window)

    async def one(i: int) -> None:
        try:
            frame = await publish_one(i)
            if isinstance(frame, Basic.Nack):
                outcome.nacked += 1
            else:
                outcome.confirmed += 1
        except aiormq.exceptions.PublishError:
            outcome.returned += 1
        finally:
            window.release()

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for i in range(outcome.count):
            await window.acquire()
            tg.start_soon(one, i)
    outcome.seconds = round(time.perf_counter() - started, 3)
    outcome.per_s = round(outcome.confirmed / outcome.seconds, 1) if outcome.seconds else 0.0


async def _with_aiormq(url: str, body: bytes, outcome: Outcome) -> None:
    connection = await aiormq.connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await channel.exchange_declare(EXCHANGE, exchange_type="topic", durable=True)

        async def publish_one(i: int) -> ConfirmationFrameType | None:
            properties = Basic.Properties(
                delivery_mode=2, message_id=f"ceiling-{i}", content_type="application/json"
            )
            return await channel.basic_publish(
                body,
                exchange=EXCHANGE,
                routing_key=ROUTING_KEY,
                properties=properties,
                mandatory=True,
            )

        await _windowed(publish_one, outcome)
    finally:
        await connection.close()


async def _with_aio_pika(url: str, body: bytes, outcome: Outcome) -> None:
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.declare_exchange(
            EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )

        async def publish_one(i: int) -> object:
            message = aio_pika.Message(
                body,
                message_id=f"ceiling-{i}",
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            )
            return await exchange.publish(message, routing_key=ROUTING_KEY, mandatory=True)

        await _windowed(publish_one, outcome)
    finally:
        await connection.close()


async def publish(url: str, client: str, count: int, window: int) -> Outcome:
    """Publish `count` messages through `client` ("aiormq" or "aio-pika") and time it."""
    outcome = Outcome(client=client, count=count, window=window)
    body = envelope_body()
    if client == "aiormq":
        await _with_aiormq(url, body, outcome)
    else:
        await _with_aio_pika(url, body, outcome)
    return outcome


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--amqp-url", required=True)
    parser.add_argument("--client", choices=("aiormq", "aio-pika"), default="aiormq")
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--window", type=int, default=512)
    args = parser.parse_args(argv)
    outcome = anyio.run(
        publish,
        args.amqp_url,
        args.client,
        args.count,
        args.window,
        backend_options={"use_uvloop": True},
    )
    print(msgspec.json.encode(outcome).decode(), flush=True)
    return 0 if outcome.confirmed == outcome.count else 1


if __name__ == "__main__":
    sys.exit(main())
