"""The outbox relay's wiring, called inside the store's writer process (gateway/store/child.py).

The process that commits the outbox rows also publishes them: it has just written them, it owns
the connection that marks them published, and the relay's work (frames, socket writes, confirm
bookkeeping, ~20 us a message) runs on its own core instead of the event loop's that serves
the webhooks. `build_relay` is handed to the store bound to the config (`functools.partial`),
pickled to the writer process, and called there with the process's own outbox source.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from actors.relay import OutboxRelay, OutboxSource
from gateway.config.settings import AmqpSettings
from protocols.amqp.publisher import ConfirmedPublisher, connect
from protocols.amqp.topology import declare_topology

__all__ = ["build_relay"]


def build_relay(
    amqp: AmqpSettings, source: OutboxSource, on_confirm: Callable[[float], None]
) -> OutboxRelay:
    """The relay of `amqp`'s broker and exchanges, draining `source`."""
    return OutboxRelay(
        source,
        partial(_connect_publisher, amqp),
        batch_size=amqp.relay_batch_size,
        reconnect_min=amqp.reconnect_min_s,
        reconnect_max=amqp.reconnect_max_s,
        on_confirm=on_confirm,
    )


async def _connect_publisher(amqp: AmqpSettings) -> ConfirmedPublisher:
    return await connect(
        amqp.url.reveal(),
        exchange=amqp.events_exchange,
        window=amqp.confirm_window,
        declare=partial(
            declare_topology,
            events_exchange=amqp.events_exchange,
            dead_letter_exchange=amqp.dead_letter_exchange,
        ),
    )
