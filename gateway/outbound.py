"""Wire outbound delivery: each partner's outbound channel becomes a courier and its channel.

`[partners.outbound]` is a signed webhook endpoint (`WebhookChannel`), `[partners.outbound_amqp]`
the partner's exchange on a broker (`gateway.outbound_amqp.ExchangeChannel`); one courier
implementation delivers over either, under the channel's `DeliveryRules`.

The HTTP rules of delivery live here, in `webhook_outcome`, and nowhere else: which statuses
deliver, retry, slow down or disable (Standard Webhooks' sender guidance). The courier only
sees the outcome; the status stays on it for the attempt log.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from actors.delivery import (
    COURIER_RESTARTS,
    DEFAULT_IDLE_WAIT_S,
    AttemptOutcome,
    Delivered,
    DeliveryChannel,
    DeliveryOutcome,
    DeliveryPolicy,
    DeliverySource,
    Disable,
    OutboundDelivery,
    PartnerCourier,
    Refused,
    RetryAfter,
)
from actors.runtime import RestartPolicy
from canonical.delivery import DeliveryRecord
from canonical.tracecontext import child_traceparent, traceparent_of
from canonical.tracing import Tracer
from gateway.config import PartnerConfig
from gateway.config.delivery import DeliveryRules, WebhookOutbound
from gateway.config.settings import AmqpSettings
from gateway.outbound_amqp import ExchangeChannel
from protocols.http.egress import (
    EgressClient,
    EgressError,
    EgressRefused,
    WebhookResponse,
    WebhookTarget,
)

__all__ = [
    "WebhookChannel",
    "build_outbound",
    "delivery_channel",
    "delivery_policy",
    "webhook_outcome",
]

GONE = 410
TOO_MANY_REQUESTS = 429
# Statuses whose Retry-After is honoured; only these ask the sender to slow down.
SLOW_DOWN = frozenset({TOO_MANY_REQUESTS, 503})


def delivery_policy(partner_id: str, rules: DeliveryRules) -> DeliveryPolicy:
    """Return the courier's rules for one partner from its channel's `DeliveryRules`."""
    fields = DeliveryRules.__struct_fields__
    return DeliveryPolicy(partner_id=partner_id, **{name: getattr(rules, name) for name in fields})


def webhook_outcome(response: WebhookResponse) -> DeliveryOutcome:
    """Return what a partner's HTTP answer means for the delivery (Standard Webhooks).

    2xx delivered; 410 Gone disables the endpoint; 429 and 503 retry no sooner than their
    Retry-After (429 says the endpoint is up, only busy: it does not open the breaker);
    anything else (3xx included: redirects are not followed) retries on the schedule.
    """
    status, latency, head = response.status, response.latency_s, response.head
    if 200 <= status < 300:
        return Delivered(latency_s=latency, detail=head, status=status)
    if status == GONE:
        return Disable(reason="410 Gone", latency_s=latency, detail=head, status=status)
    return RetryAfter(
        reason=f"HTTP {status}",
        latency_s=latency,
        delay_s=response.retry_after_s if status in SLOW_DOWN else None,
        healthy=status == TOO_MANY_REQUESTS,
        detail=head,
        status=status,
    )


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

    async def send(self, delivery: DeliveryRecord, timestamp: int) -> DeliveryOutcome:
        """POST one message, signed, its message id as `webhook-id`; return the outcome.

        A target the egress guard refuses is `Refused`: a dead letter at once with the guard's
        reason. Retrying cannot make the address allowed; an operator fixes the URL, the
        partner's DNS or `allow_networks`, then replays. No answer (unreachable, DNS, timeout)
        is `RetryAfter`.
        """
        started = time.perf_counter()
        # The message's trace continues at the partner under a new span id: this attempt's.
        traced = traceparent_of(delivery.body)
        try:
            response = await self._client.post_webhook(
                self._target,
                delivery.message_id,
                delivery.body,
                timestamp=timestamp,
                traceparent=child_traceparent(traced) if traced else None,
            )
        except EgressRefused as exc:
            latency = time.perf_counter() - started
            return Refused(reason=f"egress guard: {exc}", latency_s=latency)
        except EgressError as exc:
            return RetryAfter(reason=str(exc), latency_s=time.perf_counter() - started)
        return webhook_outcome(response)

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
    tracer: Tracer | None = None,
) -> OutboundDelivery:
    """Return the couriers of every partner with an `outbound` or `outbound_amqp` channel.

    `amqp` is the gateway's broker: the default `url` of an `outbound_amqp` channel, and the
    reconnect backoff of every such channel; required when a partner has one. `channel_for`
    may add to a partner's channel (X12 files: `gateway.edi_delivery.x12_delivery_for`); a
    partner with no outbound table then gets the default delivery rules. `restarts` is
    each courier's restart budget under the supervisor that runs it; `tracer` records
    their attempts.

    Building opens no connection and starts nothing (a webhook channel holds its target, an
    AMQP one connects on its first send, an X12 one holds the store), so a reload may build
    every partner's courier and drop unused those of partners it leaves running
    (`OutboundDelivery.adopt`).
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
            # A partner with X12 files only (no outbound table): the default rules.
            delivery_policy(p.id, settings or DeliveryRules()),
            source,
            channel,
            on_attempt=on_attempt,
            idle_wait_s=idle_wait_s,
            tracer=tracer,
        )
    return OutboundDelivery(couriers, restarts=restarts)
