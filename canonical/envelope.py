"""The envelope every canonical message travels in: ids for dedup and tracing, then the document."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from msgspec import Meta, Struct

from canonical.common import InvalidField, PartnerId, Timestamp, whole
from canonical.documents import Document, document_type_of
from canonical.files import Provenance
from canonical.ids import new_message_id

__all__ = ["MAX_IDEMPOTENCY_KEY_LENGTH", "MAX_ID_LENGTH", "Envelope", "new_envelope"]

# Message, correlation and causation ids; a transport's own id (webhook-id, AMQP message_id)
# becomes the causation id, so each transport refuses a longer one where it enters.
MAX_ID_LENGTH = 128
Id = Annotated[str, Meta(min_length=1, max_length=MAX_ID_LENGTH)]
# Keys travel as AMQP header values and in the inbox's unique index: bounded where they enter.
MAX_IDEMPOTENCY_KEY_LENGTH = 255
IdempotencyKey = Annotated[str, Meta(min_length=1, max_length=MAX_IDEMPOTENCY_KEY_LENGTH)]
# A W3C `traceparent` as `canonical.tracecontext.parse_traceparent` keeps it (version 00).
Traceparent = Annotated[str, Meta(pattern=whole(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}"))]


# Unknown fields are tolerated here, unlike in documents: a newer gateway may add a header
# field, and an older consumer must still read the message (msgspec schema-evolution rule).
class Envelope(Struct, frozen=True, kw_only=True):
    """One canonical message: who sent it, which thread it belongs to, and the document."""

    message_id: Id
    idempotency_key: IdempotencyKey
    correlation_id: Id
    causation_id: Id | None = None
    partner_id: PartnerId
    document_type: Annotated[str, Meta(pattern=whole(r"[a-z][a-z0-9_]{0,63}"))]
    schema_version: Annotated[int, Meta(ge=1)]
    occurred_at: Timestamp
    received_at: Timestamp
    document: Document
    # Where in a received file the document was found (file channels); None for a webhook or
    # an ERP message. Added with a default: an older reader ignores it (unknown fields are
    # tolerated here), an older message reads as None.
    provenance: Provenance | None = None
    # The W3C trace this message continues (a webhook's or the ERP's `traceparent`), carried
    # to the AMQP headers and the outbound webhook. Last on purpose: `traceparent_of` finds a
    # message without one by its tail, without decoding it. Optional, as `provenance` is.
    traceparent: Traceparent | None = None

    def __post_init__(self) -> None:
        # The header fields route and filter without decoding the document: they must not lie.
        if self.document_type != document_type_of(self.document):
            raise InvalidField(
                "document_type", f"does not match the document ({document_type_of(self.document)})"
            )
        if self.schema_version != self.document.schema_version:
            raise InvalidField(
                "schema_version", f"does not match the document ({self.document.schema_version})"
            )


def new_envelope(
    document: Document,
    *,
    partner_id: str,
    idempotency_key: str,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    occurred_at: dt.datetime | None = None,
    received_at: dt.datetime | None = None,
    message_id: str | None = None,
    provenance: Provenance | None = None,
    traceparent: str | None = None,
) -> Envelope:
    """Wrap `document` in a new envelope; ids and times default to fresh ones.

    A message that starts a thread is its own correlation: `correlation_id` defaults to the
    new message id.
    """
    message_id = message_id or new_message_id()
    received_at = received_at or dt.datetime.now(dt.UTC)
    return Envelope(
        message_id=message_id,
        idempotency_key=idempotency_key,
        correlation_id=correlation_id or message_id,
        causation_id=causation_id,
        partner_id=partner_id,
        document_type=document_type_of(document),
        schema_version=document.schema_version,
        occurred_at=occurred_at or received_at,
        received_at=received_at,
        document=document,
        provenance=provenance,
        traceparent=traceparent,
    )
