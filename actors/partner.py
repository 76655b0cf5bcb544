"""The partner actor: turns one partner's submissions into acceptances for the store.

One actor per partner, created on first use by a `Registry`. It does the partner's work that
must happen in order and in one place (rate limit, decode, validate, envelope), then answers
with an `Acceptance`; the caller commits it through the store. The commit is deliberately not
awaited here: an actor awaiting its own commit would serialise one partner's requests behind
each fsync, where the store's group commit wants them to arrive together.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import orjson
from msgspec import Struct

from actors.ratelimit import TokenBucket
from actors.runtime import Actor
from canonical import decode_document, encode_envelope, new_envelope, routing_key
from canonical.errors import RateLimited
from canonical.outbox import Acceptance, NewOutboxRow

__all__ = ["PartnerActor", "PartnerPolicy", "Submission"]

ACCEPTED = 202


class PartnerPolicy(Struct, frozen=True, kw_only=True):
    """What the partner actor needs to know of a partner's configuration."""

    partner_id: str
    rate_per_second: float
    burst: int


class Submission(Struct, frozen=True, kw_only=True):
    """One document a partner submitted, as the transport received it."""

    partner_id: str
    document_type: str
    body: bytes
    idempotency_key: str
    causation_id: str | None = None
    correlation_id: str | None = None
    received_at: float


def body_hash(document_type: str, body: bytes) -> bytes:
    """The digest a retry must match: the same body sent to the same document endpoint."""
    return hashlib.sha256(document_type.encode() + b"\0" + body).digest()


class PartnerActor(Actor[Submission, Acceptance]):
    """Rate-limits, decodes and validates one partner's documents into outbox rows."""

    def __init__(self, policy: PartnerPolicy) -> None:
        self.policy = policy
        self.bucket = TokenBucket(policy.rate_per_second, policy.burst)

    async def receive(self, message: Submission) -> Acceptance:
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
        )
