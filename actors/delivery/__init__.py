"""Outbound delivery: one courier per partner sends its messages, retries, then dead-letters.

See `PartnerCourier` for what each answer means and how order is kept; `OutboundDelivery` runs
the couriers; `CircuitBreaker` and `retry_delay` are the per-endpoint rules they use.
"""

from actors.delivery._breaker import BreakerState, CircuitBreaker
from actors.delivery._courier import (
    DEFAULT_HEADS_BATCH,
    DEFAULT_IDLE_WAIT_S,
    AttemptOutcome,
    CourierStatistics,
    DeliveryAnswer,
    DeliveryChannel,
    DeliveryRefused,
    DeliverySource,
    PartnerCourier,
    WebhookAnswer,
)
from actors.delivery._couriers import COURIER_RESTARTS, OutboundDelivery
from actors.delivery._policy import DeliveryPolicy, retry_delay

__all__ = [
    "COURIER_RESTARTS",
    "DEFAULT_HEADS_BATCH",
    "DEFAULT_IDLE_WAIT_S",
    "AttemptOutcome",
    "BreakerState",
    "CircuitBreaker",
    "CourierStatistics",
    "DeliveryAnswer",
    "DeliveryChannel",
    "DeliveryPolicy",
    "DeliveryRefused",
    "DeliverySource",
    "OutboundDelivery",
    "PartnerCourier",
    "WebhookAnswer",
    "retry_delay",
]
