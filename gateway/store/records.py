"""The values that go into the store and come back out of it."""

from __future__ import annotations

from msgspec import Struct

from canonical.outbox import Acceptance, Accepted, NewOutboxRow

__all__ = [
    "Acceptance",
    "Accepted",
    "BatchReport",
    "DeadLetter",
    "NewOutboxRow",
    "StoreStatistics",
]


class DeadLetter(Struct, frozen=True, kw_only=True):
    """A message the gateway gave up on, kept with the reason for an operator to replay."""

    id: int
    # Where it died: "intake:acme", "relay", "amqp:erp.events", "actor:<name>"...
    source: str
    partner_id: str | None
    message_id: str | None
    reason: str
    detail: str
    payload: bytes
    created_at: float


class BatchReport(Struct, frozen=True, kw_only=True):
    """What one group-commit transaction did, for the metrics observer."""

    acceptances: int
    # Relay marks, dead letters, actor state and purges that shared the transaction.
    operations: int
    # Outbox rows inserted (0 when the transaction rolled back).
    rows: int
    committed: bool
    seconds: float
    # Outbound deliveries inserted (0 when the transaction rolled back).
    deliveries: int = 0


class StoreStatistics(Struct, frozen=True, kw_only=True):
    """Counters since the store opened; the gateway's metrics read them at scrape time."""

    batches_committed: int
    commit_failures: int
    # Requests (acceptances and other writes) resolved by committed batches.
    requests_committed: int
    # Outbox rows inserted.
    rows_committed: int
    last_batch_size: int
    average_batch_size: float
    # Waiting for the writer now, and idempotency keys not yet resolved.
    queued: int
    in_flight: int
