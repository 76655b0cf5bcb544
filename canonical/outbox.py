"""The outbox row: written by the store in the accepting transaction, drained by the relay."""

from __future__ import annotations

from msgspec import Struct

__all__ = ["OutboxRecord", "routing_key"]


def routing_key(document_type: str, partner_id: str) -> str:
    """Return the topic-exchange routing key for a canonical event: `{document}.{partner}`."""
    return f"{document_type}.{partner_id}"


class OutboxRecord(Struct, frozen=True, kw_only=True):
    """One message waiting to be published, with the headers the relay sets on it.

    `body` is the encoded Envelope JSON, stored once and published as is, so the bytes a
    consumer reads are the bytes that were committed. `seq` is the store's row id: the
    publish order.
    """

    seq: int
    message_id: str
    partner_id: str
    document_type: str
    schema_version: int
    routing_key: str
    correlation_id: str
    causation_id: str | None
    idempotency_key: str
    body: bytes
    created_at: float
    attempts: int = 0
