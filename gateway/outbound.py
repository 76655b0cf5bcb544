"""Wire outbound delivery: each partner's outbound channel becomes a courier and its channel.

`[partners.outbound]` is a signed webhook endpoint (`WebhookChannel`), `[partners.outbound_amqp]`
the partner's exchange on a broker (`gateway.outbound_amqp.ExchangeChannel`); one courier
implementation delivers over either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import msgspec

from actors.delivery import (
    COURIER_RESTARTS,
    DEFAULT_IDLE_WAIT_S,
    AttemptOutcome,
    DeliveryChannel,
    DeliveryPolicy,
    DeliveryRefused,
    DeliverySource,
    OutboundDelivery,
    PartnerCourier,
)
from actors.runtime import RestartPolicy
from canonical.delivery import DeliveryRecord
from gateway.config import PartnerConfig
from gateway.config.delivery import AmqpOutbound, WebhookOutbound
from gateway.config.settings import AmqpSettings
from gateway.outbound_amqp import ExchangeChannel
from protocols.http.egress import EgressClient, EgressRefused, WebhookResponse, WebhookTarget

__all__ = ["WebhookChannel", "build_outbound", "delivery_channel", "delivery_policy"]


def delivery_policy(partner_id: str, outbound: WebhookOutbound | AmqpOutbound) -> DeliveryPolicy:
    """Return the courier's rules for one partner's outbound channel."""
    policy = DeliveryPolicy(
        partner_id=partner_id,
        concurrency=outbound.concurrency,
        rate_per_second=outbound.rate_per_second,
        burst=outbound.burst,
        retry_schedule_s=outbound.retry_schedule_s,
        jitter=outbound.jitter,
        max_age_s=outbound.max_age_s,
        breaker_failures=outbound.breaker_failures,
        breaker_cooldown_s=outbound.breaker_cooldown_s,
    )
    if isinstance(outbound, WebhookOutbound):  # only HTTP answers carry Retry-After
        policy = msgspec.structs.replace(policy, max_retry_after_s=outbound.max_retry_after_s)
    return policy


class WebhookChannel:
    """Signed POSTs to one partner's endpoint, through the gateway's egress pool."""

    def __init__(self, client: EgressClient, outbound: WebhookOutbound) -> None:
        self._client = client
        self._target = WebhookTarget(
            url=outbound.url,
            secret_key=outbound.secret.key,
            timeout_s=outbound.timeout_s,
            allow_networks=outbound.networks(),
            response_head_bytes=outbound.response_head_bytes,
        )

    async def send(self, delivery: DeliveryRecord, timestamp: int) -> WebhookResponse:
        """POST one message, signed, its message id as `webhook-id`; return the answer.

        A target the egress guard refuses is `DeliveryRefused`: a dead letter at once with the
        guard's reason. Retrying cannot make the address allowed; an operator fixes the URL,
        the partner's DNS or `allow_networks`, then replays.
        """
        try:
            return await self._client.post_webhook(
                self._target, delivery.message_id, delivery.body, timestamp=timestamp
            )
        except EgressRefused as exc:
            raise DeliveryRefused(f"egress guard: {exc}") from exc

    async def aclose(self) -> None:
        """Nothing to close: the egress pool is the gateway's."""


def delivery_channel(
    partner: PartnerConfig, client: EgressClient, amqp: AmqpSettings | None
) -> DeliveryChannel | None:
    """Return the channel a partner's deliveries leave by, or None if they are not pushed."""
    if partner.outbound is not None:
        return WebhookChannel(client, partner.outbound)
    if partner.outbound_amqp is not None:
        if amqp is None:  # there is no default broker to fall back on
            raise ValueError(f"partner {partner.id!r}: outbound_amqp needs the [amqp] settings")
        return ExchangeChannel(
            partner.id,
            partner.outbound_amqp,
            (partner.outbound_amqp.url or amqp.url).reveal(),
            reconnect_min_s=amqp.reconnect_min_s,
            reconnect_max_s=amqp.reconnect_max_s,
        )
    return None


def build_outbound(
    partners: Iterable[PartnerConfig],
    source: DeliverySource,
    client: EgressClient,
    *,
    amqp: AmqpSettings | None = None,
    on_attempt: Callable[[str, AttemptOutcome, float], None] | None = None,
    idle_wait_s: float = DEFAULT_IDLE_WAIT_S,
    channel_for: Callable[[PartnerConfig, DeliveryChannel | None], DeliveryChannel | None]
    | None = None,
    restarts: RestartPolicy = COURIER_RESTARTS,
) -> OutboundDelivery:
    """Return the couriers of every partner with an `outbound` or `outbound_amqp` channel.

    `amqp` is the gateway's broker: the default `url` of an `outbound_amqp` channel, and the
    reconnect backoff of every such channel; required when a partner has one. `channel_for`
    may add to a partner's channel (X12 files: `gateway.edi_delivery.x12_delivery_for`); a
    partner with no outbound table then gets the default delivery rules. `restarts` is
    each courier's restart budget under the supervisor that runs it.
    """
    couriers: dict[str, PartnerCourier] = {}
    for p in partners:
        settings = p.outbound or p.outbound_amqp
        channel = delivery_channel(p, client, amqp)
        if channel_for is not None:
            channel = channel_for(p, channel)
        if channel is None:
            continue
        couriers[p.id] = PartnerCourier(
            delivery_policy(p.id, settings) if settings else DeliveryPolicy(partner_id=p.id),
            source,
            channel,
            on_attempt=on_attempt,
            idle_wait_s=idle_wait_s,
        )
    return OutboundDelivery(couriers, restarts=restarts)
