"""What the webhook ingress needs from the gateway, and what it hands over.

The ingress depends only on these two small interfaces; the gateway implements them and wires
them in, so this package never imports actors or the store.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from .redaction import redacted_repr

__all__ = ["AcceptedResponse", "Acceptor", "IngressPolicy", "PartnerDirectory", "WebhookRequest"]


class IngressPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """What the ingress checks for one partner before anything is accepted."""

    keys: tuple[bytes, ...]
    """Live HMAC keys (decoded `whsec_` secrets); two during a rotation."""
    max_body_bytes: int
    """Largest body accepted; a longer one is refused with 413 before or while it is read."""
    allowed_documents: frozenset[str]
    """Document types this partner may send (the `{document}` path segment)."""

    def __post_init__(self) -> None:
        # Fail where the policy is built: without keys every request would be a puzzling 401.
        if not self.keys:
            raise ValueError("an ingress policy needs at least one signing key")
        if self.max_body_bytes < 0:
            raise ValueError("max_body_bytes must not be negative")

    def __repr__(self) -> str:
        return redacted_repr(self, ("keys",))


class WebhookRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One authenticated webhook, as the ingress hands it to the acceptor.

    The ids are printable ASCII: the ingress refuses any other byte in them with 400.
    """

    partner_id: str
    document_type: str
    body: bytes
    webhook_id: str
    """Signed, at most 128 characters (an envelope id); always a dedup key."""
    timestamp: int
    """`webhook-timestamp`, unix seconds, already checked against the tolerance."""
    idempotency_key: str | None
    """The `Idempotency-Key` header if sent (at most 255 characters): a second dedup key."""
    content_type: str
    received_at: float
    """Unix seconds when the ingress had the whole body."""
    traceparent: str | None = None
    """The W3C `traceparent` header if sent and valid (version 00 form), else None."""


class AcceptedResponse(msgspec.Struct, frozen=True, kw_only=True):
    """The acceptor's answer: sent as application/json with this status and body."""

    status: int
    body: bytes
    replayed: bool = False
    """True when this is the stored answer to an earlier request with the same key."""


class PartnerDirectory(Protocol):
    """Finds a partner's ingress policy; called once per request, so it must be cheap."""

    def lookup(self, partner_id: str, /) -> IngressPolicy | None:
        """Return the partner's policy, or None if there is no such partner."""
        ...


class Acceptor(Protocol):
    """Takes an authenticated webhook and answers once it is durably accepted (or refused)."""

    async def accept(self, request: WebhookRequest, /) -> AcceptedResponse:
        """Accept `request`; raise a `GatewayError` (409, 422, 429, 503...) to refuse it."""
        ...
