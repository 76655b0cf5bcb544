"""One partner's configuration: identity, signing secrets, allowed documents, limits, format."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from canonical import DOCUMENT_TYPES
from gateway.config.base import MIB, Base, BodyBytes, Name
from gateway.config.delivery import AmqpOutbound, PullOutbound, WebhookOutbound
from gateway.config.secrets import Secret

__all__ = [
    "MAX_LIVE_SECRETS",
    "PARTNER_ID_PATTERN",
    "PartnerConfig",
    "RateLimit",
    "known_document_types",
]

# Lower-case so ids sit safely in URL paths, AMQP routing keys and file names.
PARTNER_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
# Rotation keeps the old and the new secret live together; a third is a forgotten one.
MAX_LIVE_SECRETS = 2


def known_document_types() -> frozenset[str]:
    """Return the document types partners may name: the canonical registry's keys."""
    return frozenset(DOCUMENT_TYPES)


class RateLimit(Base, frozen=True):
    """A token bucket: `per_second` tokens refill, up to `burst` requests at once."""

    per_second: Annotated[float, msgspec.Meta(gt=0)] = 50.0
    burst: Annotated[int, msgspec.Meta(ge=1)] = 100


class PartnerConfig(Base, frozen=True):
    """One trading partner as the gateway knows it."""

    id: Annotated[str, msgspec.Meta(pattern=PARTNER_ID_PATTERN)]
    name: Name
    # One live secret, or two while rotating: a signature made with either is accepted.
    secrets: Annotated[tuple[Secret, ...], msgspec.Meta(min_length=1, max_length=MAX_LIVE_SECRETS)]
    sends: frozenset[str] = frozenset()  # document types the partner may send to us
    receives: frozenset[str] = frozenset()  # document types we may send to the partner
    rate_limit: RateLimit = RateLimit()
    # At most [http] max_body_bytes, the ceiling checked before the partner is known; the loader
    # fills in that ceiling when the partner leaves it out.
    max_body_bytes: BodyBytes = MIB
    # Wire format of the partner's documents; "csv" and "x12" join when their codecs exist.
    format: Literal["json"] = "json"
    # Where the gateway delivers the documents in `receives` (gateway/config/delivery.py).
    outbound: WebhookOutbound | None = None
    # Or: they are published to the partner's AMQP exchange (`[partners.outbound_amqp]`).
    outbound_amqp: AmqpOutbound | None = None
    # Or: the partner pulls its messages (`[partners.pull]`, gateway/config/delivery.py).
    pull: PullOutbound | None = None

    def __post_init__(self) -> None:
        channels = [
            name
            for name in ("outbound", "outbound_amqp", "pull")
            if getattr(self, name) is not None
        ]
        if len(channels) > 1:
            first, second = channels[:2]
            raise ValueError(f"{second}: a partner has one outbound channel, {first} already")
