"""One partner's outbound channel: a signed webhook endpoint, its limits, retries and egress rules.

In TOML it is the partner's `outbound` table:

    [[partners]]
    id = "acme"
    ...
    [partners.outbound]
    url = "https://hooks.acme.example/gateway"
    secret = { env = "ACME_OUTBOUND_SECRET" }
    retry_schedule_s = [5, 300, 1800]        # waits before each retry; the first try is at once
    allow_networks = ["10.20.0.0/16"]        # only to reach a partner on a private network

A partner that cannot receive webhooks pulls instead: a `pull` table in place of `outbound`
(`PullOutbound`). Its deliveries are kept pending until it fetches and acknowledges them on
`GET /partners/{id}/messages` and `POST /partners/{id}/messages/ack` (protocols/http/pull.py):

    [partners.pull]
    token = { env = "ACME_PULL_TOKEN" }      # the bearer token, a `whsec_...` secret
    max_batch = 500                          # most messages one GET returns

A partner that takes AMQP gets its messages published to an exchange instead: an
`outbound_amqp` table in place of `outbound` (`AmqpOutbound`), with the relay's guarantees
(persistent, mandatory, publisher confirms; the AMQP `message_id` is the canonical one):

    [partners.outbound_amqp]
    exchange = "acme.inbound"                # a durable topic exchange the gateway declares
    routing_key = "{document}.{partner}"     # the default; the only placeholders there are
    url = { env = "ACME_AMQP_URL" }          # optional: the gateway's [amqp] url by default

A partner has one outbound channel at most: `outbound`, `outbound_amqp` or `pull`.

The delivery rules (concurrency, rate, retries, jitter, age, breaker, longest wait asked for)
are one Struct, `DeliveryRules`, which every push channel's table extends: the same keys, with
the same defaults, in `outbound` and `outbound_amqp`; a partner whose documents go out only
as X12 files (`[partners.edi] send_as_x12`) is delivered under `DeliveryRules()`. A pull
partner has none: it fetches, nothing is attempted.
"""

from __future__ import annotations

import ipaddress
import string
from collections.abc import Iterator
from typing import Annotated
from urllib.parse import urlsplit

import msgspec

from gateway.config.base import Base, Count, Name, Problem, Seconds, known
from gateway.config.secrets import AmqpUrl, Secret

__all__ = [
    "DEFAULT_AMQP_CONFIRM_TIMEOUT_S",
    "DEFAULT_AMQP_CONNECT_TIMEOUT_S",
    "DEFAULT_AMQP_ROUTING_KEY",
    "DEFAULT_BREAKER_COOLDOWN_S",
    "DEFAULT_BREAKER_FAILURES",
    "DEFAULT_BURST",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_JITTER",
    "DEFAULT_MAX_AGE_S",
    "DEFAULT_MAX_RETRY_AFTER_S",
    "DEFAULT_PULL_BATCH",
    "DEFAULT_RATE_PER_SECOND",
    "DEFAULT_RESPONSE_HEAD_BYTES",
    "DEFAULT_TIMEOUT_S",
    "STANDARD_WEBHOOKS_RETRY_SCHEDULE_S",
    "AmqpOutbound",
    "DeliveryRules",
    "PullOutbound",
    "WebhookOutbound",
]

# Standard Webhooks' sender guidance: 15-30 s.
DEFAULT_TIMEOUT_S = 15.0
# Calls in flight to one partner at once (different aggregates; one aggregate is sequential).
DEFAULT_CONCURRENCY = 4
# Calls per second to one partner, and how many may go at once after a quiet spell.
DEFAULT_RATE_PER_SECOND = 20.0
DEFAULT_BURST = 20
# Standard Webhooks' example schedule after the immediate first try: 5 s, 5 min, 30 min, 2 h,
# 5 h, 10 h, 14 h, 20 h, 24 h (ten attempts over about three days).
STANDARD_WEBHOOKS_RETRY_SCHEDULE_S: tuple[float, ...] = (
    5,
    300,
    1800,
    7200,
    18000,
    36000,
    50400,
    72000,
    86400,
)
# +/- this fraction of each wait (Svix uses 20 %), so a recovered partner is not hit at once
# by every message that failed together.
DEFAULT_JITTER = 0.2
# A delivery older than this is dead-lettered at its next failure, whatever the schedule says.
DEFAULT_MAX_AGE_S = 4 * 24 * 3600.0
# Consecutive failures that open the endpoint's circuit, and the wait before a probe.
DEFAULT_BREAKER_FAILURES = 5
DEFAULT_BREAKER_COOLDOWN_S = 30.0
# A wait asked for (HTTP Retry-After) beyond this is taken as this: a hostile or broken
# header cannot park a partner.
DEFAULT_MAX_RETRY_AFTER_S = 24 * 3600.0
# First bytes of each answer kept with the attempt.
DEFAULT_RESPONSE_HEAD_BYTES = 512
# Most messages one pull returns, whatever `limit` the partner asks for.
DEFAULT_PULL_BATCH = 100

# An AMQP channel's routing key: the canonical events' own shape, unless the partner asks.
DEFAULT_AMQP_ROUTING_KEY = "{document}.{partner}"
ROUTING_KEY_PLACEHOLDERS = frozenset({"document", "partner"})
# The relay publisher's bounds (protocols/amqp/publisher.py), per partner connection.
DEFAULT_AMQP_CONNECT_TIMEOUT_S = 10.0
DEFAULT_AMQP_CONFIRM_TIMEOUT_S = 30.0

Delay = Annotated[float, msgspec.Meta(ge=0, le=7 * 24 * 3600)]
Concurrency = Annotated[int, msgspec.Meta(ge=1, le=256)]
Rate = Annotated[float, msgspec.Meta(gt=0)]
Burst = Annotated[int, msgspec.Meta(ge=1)]
RetrySchedule = Annotated[tuple[Delay, ...], msgspec.Meta(max_length=100)]
Jitter = Annotated[float, msgspec.Meta(ge=0, lt=1)]


class DeliveryRules(Base, frozen=True, kw_only=True):
    """How the courier treats one partner's deliveries, whatever the channel: calls at once,
    rate, retry schedule, age limit, breaker (mapped to `actors.delivery.DeliveryPolicy`).

    Channel tables extend it, repeating `kw_only=True` as `frozen=True` (msgspec#657): their
    own required fields follow these defaults.
    """

    # Calls in flight at once (different aggregates; one aggregate is sequential).
    concurrency: Concurrency = DEFAULT_CONCURRENCY
    # Token bucket for calls to this partner (retries included): refill rate and burst.
    rate_per_second: Rate = DEFAULT_RATE_PER_SECOND
    burst: Burst = DEFAULT_BURST
    retry_schedule_s: RetrySchedule = STANDARD_WEBHOOKS_RETRY_SCHEDULE_S
    jitter: Jitter = DEFAULT_JITTER
    max_age_s: Seconds = DEFAULT_MAX_AGE_S
    breaker_failures: Count = DEFAULT_BREAKER_FAILURES
    breaker_cooldown_s: Seconds = DEFAULT_BREAKER_COOLDOWN_S
    # The longest pause an answer may ask for (HTTP Retry-After); longer asks are cut to it.
    max_retry_after_s: Seconds = DEFAULT_MAX_RETRY_AFTER_S


class WebhookOutbound(DeliveryRules, frozen=True, kw_only=True):
    """Where and how the gateway delivers messages to one partner: Standard Webhooks POSTs,
    under its `DeliveryRules` (the keys beside these in the table)."""

    url: Name
    # Signs every delivery (Standard Webhooks); the partner verifies with it.
    secret: Secret
    timeout_s: Seconds = DEFAULT_TIMEOUT_S
    response_head_bytes: Annotated[int, msgspec.Meta(ge=0, le=65536)] = DEFAULT_RESPONSE_HEAD_BYTES
    # Non-public networks this partner may be reached on (CIDR). Empty: public addresses only.
    allow_networks: tuple[str, ...] = ()

    def problems(self) -> Iterator[Problem]:
        with known():
            try:
                parts = urlsplit(self.url)
                parts.port  # noqa: B018 - raises ValueError on a port that is not a number
            except ValueError:
                parts = None
            if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
                yield "url", "expected http(s)://host[:port]/path"
            elif parts.username is not None or parts.password is not None:
                yield "url", "credentials in the URL are not sent; remove them"
        with known():
            for i, network in enumerate(self.allow_networks):
                try:
                    ipaddress.ip_network(network)
                except ValueError as exc:
                    yield f"allow_networks[{i}]", str(exc)

    def networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """Return `allow_networks` parsed."""
        return tuple(ipaddress.ip_network(n) for n in self.allow_networks)


class PullOutbound(Base, frozen=True):
    """A partner that fetches its messages over HTTP instead of receiving webhooks."""

    # The partner's bearer token (`Authorization: Bearer whsec_...`), compared in constant time.
    token: Secret
    max_batch: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = DEFAULT_PULL_BATCH


class AmqpOutbound(DeliveryRules, frozen=True, kw_only=True):
    """Where and how the gateway delivers messages to one partner: confirmed AMQP publishes.

    Under its `DeliveryRules`, as a webhook channel is; a publish is one attempt, its confirm
    the answer.
    """

    # Declared durable topic by the gateway, or only checked (passive) with `declare = false`.
    exchange: Name
    declare: bool = True
    routing_key: Name = DEFAULT_AMQP_ROUTING_KEY
    # None: the gateway's own broker ([amqp] url). Inline, { env = "VAR" } or { file = "path" }.
    url: AmqpUrl | None = None
    connect_timeout_s: Seconds = DEFAULT_AMQP_CONNECT_TIMEOUT_S
    confirm_timeout_s: Seconds = DEFAULT_AMQP_CONFIRM_TIMEOUT_S

    def problems(self) -> Iterator[Problem]:
        with known():
            try:
                names = {name for _, name, _, _ in string.Formatter().parse(self.routing_key)}
            except ValueError as exc:
                yield "routing_key", str(exc)
                return
            unknown = sorted(n for n in names - ROUTING_KEY_PLACEHOLDERS if n is not None)
            if unknown:
                yield (
                    "routing_key",
                    (f"unknown placeholder {{{unknown[0]}}}; use {{document}}, {{partner}}"),
                )

    def routing_key_for(self, document_type: str, partner_id: str) -> str:
        """Return the routing key of one message: the template with its placeholders filled."""
        return self.routing_key.format(document=document_type, partner=partner_id)
