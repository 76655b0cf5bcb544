"""Outbound delivery: one courier per partner POSTs its messages, retries, then dead-letters.

See `PartnerCourier` for what each answer means and how order is kept; `OutboundDelivery` runs
the couriers; `CircuitBreaker` and `retry_delay` are the per-endpoint rules they use.
"""

from actors.delivery._breaker import BreakerState, CircuitBreaker
from actors.delivery._courier import (
    DEFAULT_HEADS_BATCH,
    DEFAULT_IDLE_WAIT_S,
    AttemptOutcome,
    CourierStatistics,
    DeliverySource,
    PartnerCourier,
    WebhookAnswer,
    WebhookSender,
)
from actors.delivery._couriers import OutboundDelivery
from actors.delivery._policy import DeliveryPolicy, retry_delay

__all__ = [
    "DEFAULT_HEADS_BATCH",
    "DEFAULT_IDLE_WAIT_S",
    "AttemptOutcome",
    "BreakerState",
    "CircuitBreaker",
    "CourierStatistics",
    "DeliveryPolicy",
    "DeliverySource",
    "OutboundDelivery",
    "PartnerCourier",
    "WebhookAnswer",
    "WebhookSender",
    "retry_delay",
]
