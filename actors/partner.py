"""The partner's intake: turns one partner's submissions into acceptances for the store.

One `PartnerIntake` per partner holds the partner's state (its rate-limit bucket) and does the
partner's work in one place (rate limit, decode, validate, envelope), answering with an
`Acceptance` that the caller commits through the store.

`admit` is synchronous on purpose, and the intake is called directly rather than through an
actor mailbox. The work has no await, so the event loop already runs one admission at a time:
a mailbox would add no exclusivity, only a task switch and a reply per request, which py-spy
put at a fifth of the ingest path's CPU (README.md, "Performance"). The commit is
not awaited here either: the caller awaits it, so one partner's requests share group commits
instead of queueing behind each other's fsync.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import orjson
from msgspec import Struct

from actors.ports import Acceptance, NewOutboxRow
from actors.ratelimit import TokenBucket
from canonical import decode_document, encode_envelope, new_envelope, routing_key
from canonical.errors import RateLimited

__all__ = ["PartnerIntake", "PartnerPolicy", "Submission", "body_hash"]

ACCEPTED = 202


class PartnerPolicy(Struct, frozen=True, kw_only=True):
    """What the partner's intake needs to know of its configuration."""

    partner_id: str
    rate_per_second: float
    burst: int


class Submission(Struct, frozen=True, kw_only=True):
    """One document a partner submitted, as the transport received it.

    `idempotency_key` is the key the transport vouches for (the signed webhook-id);
    `alias_key` a second one the partner chose (an unsigned Idempotency-Key header), which can
    recognise a retry but never make a seen request new (`Acceptance.idempotency_keys`).
    """

    partner_id: str
    document_type: str
    body: bytes
    idempotency_key: str
    alias_key: str | None = None
    causation_id: str | None = None
    correlation_id: str | None = None
    received_at: float
    traceparent: str | None = None  # W3C, already validated by the transport


def body_hash(document_type: str, body: bytes) -> bytes:
    """The digest a retry must match: the same body sent to the same document endpoint."""
    return hashlib.sha256(document_type.encode() + b"\0" + body).digest()


class PartnerIntake:
    """Rate-limits, decodes and validates one partner's documents into outbox rows."""

    def __init__(self, policy: PartnerPolicy) -> None:
        self.policy = policy
        self.bucket = TokenBucket(policy.rate_per_second, policy.burst)

    def admit(self, message: Submission) -> Acceptance:
        """Return the acceptance to commit; raise a `GatewayError` (429, 422) to refuse."""
        wait = self.bucket.take()
        if wait:
            raise RateLimited(
                f"partner {self.policy.partner_id!r} is over its rate limit", retry_after=wait
            )
        document = decode_document(message.document_type, message.body)
        envelope = new_envelope(
            document,
            partner_id=message.partner_id,
            idempotency_key=message.idempotency_key,
            correlation_id=message.correlation_id,
            causation_id=message.causation_id,
            received_at=dt.datetime.fromtimestamp(message.received_at, dt.UTC),
            traceparent=message.traceparent,
        )
        response = orjson.dumps(
            {
                "status": "accepted",
                "message_ids": [envelope.message_id],
                "correlation_id": envelope.correlation_id,
            }
        )
        row = NewOutboxRow(
            message_id=envelope.message_id,
            document_type=envelope.document_type,
            schema_version=envelope.schema_version,
            routing_key=routing_key(envelope.document_type, envelope.partner_id),
            correlation_id=envelope.correlation_id,
            causation_id=envelope.causation_id,
            body=encode_envelope(envelope),
        )
        return Acceptance(
            partner_id=message.partner_id,
            idempotency_key=message.idempotency_key,
            body_hash=body_hash(message.document_type, message.body),
            response_status=ACCEPTED,
            response_body=response,
            records=(row,),
            alias_keys=(message.alias_key,) if message.alias_key else (),
        )
