"""AMQP transport: the gateway's RabbitMQ topology and a confirmed, windowed publisher."""

from protocols.amqp.publisher import (
    BrokerConnectionLost,
    ConfirmedPublisher,
    Delivery,
    Outcome,
    Publishable,
    connect,
)
from protocols.amqp.topology import (
    declare_consumer_queue,
    declare_dead_letters,
    declare_events_exchange,
    declare_topology,
    quorum_queue_arguments,
)

__all__ = [
    "BrokerConnectionLost",
    "ConfirmedPublisher",
    "Delivery",
    "Outcome",
    "Publishable",
    "connect",
    "declare_consumer_queue",
    "declare_dead_letters",
    "declare_events_exchange",
    "declare_topology",
    "quorum_queue_arguments",
]
