"""Declare the gateway's exchanges and queues on RabbitMQ, idempotently.

Every function may run on every (re)connect: declaring what exists with the same arguments is a
no-op for the broker. Declaring an existing queue with *different* arguments closes the channel
with 406 PRECONDITION_FAILED (`aiormq.ChannelPreconditionFailed`); that is a deployment error
and is left to surface.

The functions take an aiormq channel; an aio-pika channel gives one with
`await channel.get_underlay_channel()`.

Names and routing:

- events exchange (topic, durable): canonical events, routing key `{document_type}.{partner_id}`
  (`canonical.outbox.routing_key`), so `purchase_order.*` or `*.acme` select by either part;
- dead-letter exchange (topic, durable): where consumer queues send rejected messages and those
  past their delivery limit; the routing key stays the event's own;
- parking lot (quorum queue bound to the dead-letter exchange with `#`): keeps them for
  inspection and replay. It has no delivery limit of its own: past a limit, a queue without a
  dead-letter target drops the message.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiormq.abc import AbstractChannel, ArgumentsType

__all__ = [
    "DEFAULT_DEAD_LETTER_EXCHANGE",
    "DEFAULT_DELIVERY_LIMIT",
    "DEFAULT_EVENTS_EXCHANGE",
    "DEFAULT_MAX_LENGTH",
    "DEFAULT_PARKING_LOT",
    "declare_consumer_queue",
    "declare_dead_letters",
    "declare_events_exchange",
    "declare_topology",
    "quorum_queue_arguments",
]

DEFAULT_EVENTS_EXCHANGE = "gateway.events"
DEFAULT_DEAD_LETTER_EXCHANGE = "gateway.dlx"
DEFAULT_PARKING_LOT = "gateway.parking-lot"
# RabbitMQ 3.10 quorum queues have no default delivery limit: without one a poison message is
# redelivered forever.
DEFAULT_DELIVERY_LIMIT = 20
# Messages a queue holds before it refuses publishes (the publisher sees a nack and the outbox
# keeps the row), instead of growing until the broker's memory alarm blocks every publisher.
DEFAULT_MAX_LENGTH = 1_000_000


def quorum_queue_arguments(
    *,
    dead_letter_exchange: str | None,
    delivery_limit: int | None,
    max_length: int,
) -> ArgumentsType:
    """Return the `x-` arguments of a gateway quorum queue.

    With a dead-letter exchange, dead-lettering is at-least-once: the broker keeps a message
    until the dead-letter target confirms it. RabbitMQ only honours that strategy together with
    `overflow=reject-publish`, so every gateway queue uses it; with `drop-head` it would quietly
    fall back to at-most-once.
    """
    arguments: ArgumentsType = {
        "x-queue-type": "quorum",
        "x-overflow": "reject-publish",
        "x-max-length": max_length,
    }
    if delivery_limit is not None:
        arguments["x-delivery-limit"] = delivery_limit
    if dead_letter_exchange is not None:
        arguments["x-dead-letter-exchange"] = dead_letter_exchange
        arguments["x-dead-letter-strategy"] = "at-least-once"
    return arguments


async def declare_events_exchange(
    channel: AbstractChannel, name: str = DEFAULT_EVENTS_EXCHANGE
) -> None:
    """Declare the durable topic exchange that canonical events are published to."""
    await channel.exchange_declare(name, exchange_type="topic", durable=True)


async def declare_dead_letters(
    channel: AbstractChannel,
    *,
    exchange: str = DEFAULT_DEAD_LETTER_EXCHANGE,
    parking_lot: str = DEFAULT_PARKING_LOT,
    max_length: int = DEFAULT_MAX_LENGTH,
) -> None:
    """Declare the dead-letter exchange and the parking-lot queue that catches everything on it."""
    await channel.exchange_declare(exchange, exchange_type="topic", durable=True)
    await channel.queue_declare(
        parking_lot,
        durable=True,
        arguments=quorum_queue_arguments(
            dead_letter_exchange=None, delivery_limit=None, max_length=max_length
        ),
    )
    await channel.queue_bind(parking_lot, exchange, routing_key="#")


async def declare_topology(
    channel: AbstractChannel,
    *,
    events_exchange: str = DEFAULT_EVENTS_EXCHANGE,
    dead_letter_exchange: str = DEFAULT_DEAD_LETTER_EXCHANGE,
    parking_lot: str = DEFAULT_PARKING_LOT,
) -> None:
    """Declare what the gateway needs before it publishes: events exchange and dead letters."""
    await declare_events_exchange(channel, events_exchange)
    await declare_dead_letters(channel, exchange=dead_letter_exchange, parking_lot=parking_lot)


async def declare_consumer_queue(
    channel: AbstractChannel,
    name: str,
    *,
    bindings: Iterable[str] = (),
    exchange: str = DEFAULT_EVENTS_EXCHANGE,
    dead_letter_exchange: str = DEFAULT_DEAD_LETTER_EXCHANGE,
    delivery_limit: int = DEFAULT_DELIVERY_LIMIT,
    max_length: int = DEFAULT_MAX_LENGTH,
) -> None:
    """Declare a consumer's quorum queue and bind it to `exchange` with each routing pattern.

    A message rejected without requeue, or delivered more than `delivery_limit` times, goes to
    `dead_letter_exchange` (at-least-once), hence to the parking lot.
    """
    await channel.queue_declare(
        name,
        durable=True,
        arguments=quorum_queue_arguments(
            dead_letter_exchange=dead_letter_exchange,
            delivery_limit=delivery_limit,
            max_length=max_length,
        ),
    )
    for pattern in bindings:
        await channel.queue_bind(name, exchange, routing_key=pattern)
