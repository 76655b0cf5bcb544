"""The values that cross between actors and the store: acceptances in, outbox rows out.

Data only. The calls made with them (accept, pending, mark_published...) and what each
promises are the actors' ports (`actors/ports.py`), which the gateway's store implements.
The values stay here because both sides must read them and the store may import nothing but
canonical (its writer process decodes `Acceptance`s by type, in another process): actors
build `Acceptance`s, the store commits them and hands `OutboxRecord`s to the relay.
"""

from __future__ import annotations

from msgspec import Struct

__all__ = [
    "Acceptance",
    "Accepted",
    "NewDelivery",
    "NewOutboxRow",
    "OutboxRecord",
    "routing_key",
]


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


class NewOutboxRow(Struct, frozen=True, kw_only=True):
    """One message to publish once its acceptance commits; the store assigns its `seq`.

    Partner, idempotency key and creation time come from the `Acceptance` that carries the
    row, so they cannot disagree with it.
    """

    message_id: str
    document_type: str
    schema_version: int
    routing_key: str
    correlation_id: str
    causation_id: str | None
    body: bytes


class NewDelivery(Struct, frozen=True, kw_only=True):
    """One message to deliver to one partner, kept in the same transaction as its acceptance.

    `message_id` is the canonical message id: the partner sees it as `webhook-id` on every
    attempt and on replay, so it can dedup. Order is kept per (partner_id, aggregate_key),
    e.g. all messages of one purchase order.
    """

    partner_id: str
    message_id: str
    document_type: str
    aggregate_key: str
    correlation_id: str
    body: bytes


class Acceptance(Struct, frozen=True, kw_only=True):
    """One request to keep: its idempotency record (the answer to replay) and its messages.

    `body_hash` is a digest of the request body: a retry with the same key must carry the same
    body to be answered with `response_status`/`response_body` again.

    `idempotency_key` is the key the transport vouches for (a webhook's signed webhook-id, an
    AMQP message id); `alias_keys` are further keys the same request is known by (a webhook's
    Idempotency-Key). The store answers from the first of `idempotency_keys()` it has kept,
    and keeps all of them for a new request: no key can turn a seen request into a new message.
    """

    partner_id: str
    idempotency_key: str
    body_hash: bytes
    response_status: int
    response_body: bytes
    records: tuple[NewOutboxRow, ...] = ()
    deliveries: tuple[NewDelivery, ...] = ()
    alias_keys: tuple[str, ...] = ()

    def idempotency_keys(self) -> tuple[str, ...]:
        """Every key of the request, `idempotency_key` first, each once."""
        if not self.alias_keys:
            return (self.idempotency_key,)
        return tuple(dict.fromkeys((self.idempotency_key, *self.alias_keys)))


class Accepted(Struct, frozen=True, kw_only=True):
    """The answer to give the partner, returned only once the rows are committed.

    `replayed` is True when the key was already committed with the same body: `status` and
    `body` are then the stored first answer, byte for byte, and `seqs` is empty.
    """

    status: int
    body: bytes
    replayed: bool
    seqs: tuple[int, ...] = ()
