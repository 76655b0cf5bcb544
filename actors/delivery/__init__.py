"""Outbound delivery: one courier per partner sends its messages, retries, then dead-letters.

Channels say what each attempt came to as a `DeliveryOutcome` (`Delivered`, `RetryAfter`,
`Refused`, `Disable`); see `PartnerCourier` for what each means and how order is kept;
`OutboundDelivery` runs the couriers; `CircuitBreaker` and `retry_delay` are the per-endpoint
rules they use.
"""

from actors.delivery._breaker import BreakerState, CircuitBreaker
from actors.delivery._courier import (
    DEFAULT_HEADS_BATCH,
    DEFAULT_IDLE_WAIT_S,
    AttemptOutcome,
    CourierStatistics,
    DeliveryChannel,
    DeliverySource,
    PartnerCourier,
)
from actors.delivery._couriers import COURIER_RESTARTS, OutboundDelivery
from actors.delivery._policy import DeliveryPolicy, retry_delay
from actors.ports import Delivered, DeliveryOutcome, Disable, Refused, RetryAfter

__all__ = [
    "COURIER_RESTARTS",
    "DEFAULT_HEADS_BATCH",
    "DEFAULT_IDLE_WAIT_S",
    "AttemptOutcome",
    "BreakerState",
    "CircuitBreaker",
    "CourierStatistics",
    "Delivered",
    "DeliveryChannel",
    "DeliveryOutcome",
    "DeliveryPolicy",
    "DeliverySource",
    "Disable",
    "OutboundDelivery",
    "PartnerCourier",
    "Refused",
    "RetryAfter",
    "retry_delay",
]
