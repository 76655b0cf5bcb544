"""Wire outbound delivery: each partner's `outbound` becomes a courier and a signed sender."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from actors.delivery import (
    DEFAULT_IDLE_WAIT_S,
    AttemptOutcome,
    DeliveryPolicy,
    DeliverySource,
    OutboundDelivery,
    PartnerCourier,
    WebhookAnswer,
    WebhookSender,
)
from gateway.config import PartnerConfig
from gateway.config.delivery import WebhookOutbound
from protocols.http.egress import EgressClient, WebhookTarget

__all__ = ["build_outbound", "delivery_policy", "webhook_sender"]


def delivery_policy(partner_id: str, outbound: WebhookOutbound) -> DeliveryPolicy:
    """Return the courier's rules for one partner's outbound channel."""
    return DeliveryPolicy(
        partner_id=partner_id,
        concurrency=outbound.concurrency,
        rate_per_second=outbound.rate_per_second,
        burst=outbound.burst,
        retry_schedule_s=outbound.retry_schedule_s,
        jitter=outbound.jitter,
        max_age_s=outbound.max_age_s,
        breaker_failures=outbound.breaker_failures,
        breaker_cooldown_s=outbound.breaker_cooldown_s,
        max_retry_after_s=outbound.max_retry_after_s,
    )


def webhook_sender(client: EgressClient, outbound: WebhookOutbound) -> WebhookSender:
    """Return the courier's `send(message_id, body, timestamp)` for one partner's endpoint."""
    target = WebhookTarget(
        url=outbound.url,
        secret_key=outbound.secret.key,
        timeout_s=outbound.timeout_s,
        allow_networks=outbound.networks(),
        response_head_bytes=outbound.response_head_bytes,
    )

    async def send(message_id: str, body: bytes, timestamp: int) -> WebhookAnswer:
        return await client.post_webhook(target, message_id, body, timestamp=timestamp)

    return send


def build_outbound(
    partners: Iterable[PartnerConfig],
    source: DeliverySource,
    client: EgressClient,
    *,
    on_attempt: Callable[[str, AttemptOutcome, float], None] | None = None,
    idle_wait_s: float = DEFAULT_IDLE_WAIT_S,
) -> OutboundDelivery:
    """Return the couriers of every partner that has an `outbound` channel."""
    couriers = {
        p.id: PartnerCourier(
            delivery_policy(p.id, p.outbound),
            source,
            webhook_sender(client, p.outbound),
            on_attempt=on_attempt,
            idle_wait_s=idle_wait_s,
        )
        for p in partners
        if p.outbound is not None
    }
    return OutboundDelivery(couriers)
