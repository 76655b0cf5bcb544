"""The delivery contract: what the store hands the delivery actors, and what they hand back.

These types sit in canonical for the same reason as the outbox's: the store (gateway) keeps
deliveries and their attempts, the delivery actors (actors) read and settle them.
"""

from __future__ import annotations

from typing import Literal

from msgspec import Struct

__all__ = ["DeliveryAttempt", "DeliveryRecord", "DeliveryState", "Settlement"]

DeliveryState = Literal["pending", "delivered", "dead"]

Settlement = Literal["delivered", "retry", "dead"]
"""What one attempt leaves behind: done, another attempt at `next_attempt_at`, or a dead letter."""


class DeliveryRecord(Struct, frozen=True, kw_only=True):
    """One message for one partner, as the store keeps it.

    `id` is the store's row id: the order of deliveries within a (partner, aggregate).
    `message_id` is the partner's `webhook-id` on every attempt and every replay.
    """

    id: int
    partner_id: str
    message_id: str
    document_type: str
    aggregate_key: str
    correlation_id: str
    body: bytes
    state: DeliveryState
    attempts: int
    next_attempt_at: float
    created_at: float
    settled_at: float | None = None
    reason: str | None = None


class DeliveryAttempt(Struct, frozen=True, kw_only=True):
    """One call to a partner's endpoint: when, what came back, how long it took.

    `status` is None when no HTTP answer came (refused, unreachable, timed out); `error` then
    says why. `response_head` is the first bytes of the answer's body, bounded by the sender.
    """

    attempted_at: float
    status: int | None
    latency_s: float
    error: str | None = None
    response_head: bytes = b""
