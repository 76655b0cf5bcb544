"""The store: the one module through which the gateway touches SQLite.

`Store` keeps, in one SQLite file, the idempotency records (inbox), the transactional outbox,
deliveries, dead letters and actor state; rows nothing needs any more go once past their
`Retention`. Acceptances share commits (group commit) through one writer task, whose
transactions run in the store's writer process (`gateway/store/process.py`), which also runs
the outbox relay when the store is given one (`gateway/store/child.py`).
"""

from gateway.store.core import (
    DEFAULT_BUSY_TIMEOUT_S,
    DEFAULT_JOURNAL_SIZE_LIMIT,
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_QUEUED,
    DEFAULT_PURGE_CHUNK,
    DEFAULT_PURGE_CHUNK_S,
    DEFAULT_RETRY_AFTER_S,
    Store,
)
from gateway.store.operator_reads import OperatorReads
from gateway.store.records import (
    Acceptance,
    Accepted,
    BatchReport,
    DeadLetter,
    NewOutboxRow,
    StoreStatistics,
)
from gateway.store.retention import PurgeReport, Retention
from gateway.store.schema import SCHEMA_VERSION

__all__ = [
    "DEFAULT_BUSY_TIMEOUT_S",
    "DEFAULT_JOURNAL_SIZE_LIMIT",
    "DEFAULT_MAX_BATCH",
    "DEFAULT_MAX_QUEUED",
    "DEFAULT_PURGE_CHUNK",
    "DEFAULT_PURGE_CHUNK_S",
    "DEFAULT_RETRY_AFTER_S",
    "SCHEMA_VERSION",
    "Acceptance",
    "Accepted",
    "BatchReport",
    "DeadLetter",
    "NewOutboxRow",
    "OperatorReads",
    "PurgeReport",
    "Retention",
    "Store",
    "StoreStatistics",
]
