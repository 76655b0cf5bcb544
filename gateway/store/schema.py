"""The store's tables, their migrations (tracked in `PRAGMA user_version`), and connection set-up.

Each migration moves the schema one version up inside one transaction, together with the
`user_version` bump, so a crash mid-migration leaves the previous version whole.
"""

from __future__ import annotations

import sqlite3
from typing import Literal

from canonical.errors import ConfigError
from gateway.store import edi, files, inventory, orders, retention

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Synchronous",
    "migrate",
    "prepare_reader",
    "prepare_writer",
]

Synchronous = Literal["FULL", "NORMAL"]

# MIGRATIONS[n] takes the schema from version n to n + 1. Append, never edit a released entry.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        # The idempotency record, scoped per partner: the first answer, replayed byte for byte.
        """
        CREATE TABLE inbox (
            partner_id      TEXT NOT NULL,
            idempotency_key TEXT NOT NULL,
            body_hash       BLOB NOT NULL,
            status          INTEGER NOT NULL,
            response        BLOB NOT NULL,
            created_at      REAL NOT NULL,
            PRIMARY KEY (partner_id, idempotency_key)
        ) WITHOUT ROWID
        """,
        "CREATE INDEX inbox_created_at ON inbox (created_at)",
        # AUTOINCREMENT: a seq is never handed out twice, even after rows are deleted.
        """
        CREATE TABLE outbox (
            seq             INTEGER PRIMARY KEY AUTOINCREMENT,
            message_id      TEXT NOT NULL UNIQUE,
            partner_id      TEXT NOT NULL,
            document_type   TEXT NOT NULL,
            schema_version  INTEGER NOT NULL,
            routing_key     TEXT NOT NULL,
            correlation_id  TEXT NOT NULL,
            causation_id    TEXT,
            idempotency_key TEXT NOT NULL,
            body            BLOB NOT NULL,
            state           TEXT NOT NULL DEFAULT 'pending'
                            CHECK (state IN ('pending', 'published', 'dead')),
            attempts        INTEGER NOT NULL DEFAULT 0,
            created_at      REAL NOT NULL,
            published_at    REAL,
            reason          TEXT
        )
        """,
        # Only pending rows are indexed: the relay's "next pending in seq order" stays cheap
        # however many published rows the table keeps.
        "CREATE INDEX outbox_pending ON outbox (seq) WHERE state = 'pending'",
        """
        CREATE TABLE dead_letters (
            id         INTEGER PRIMARY KEY AUTOINCREMENT,
            source     TEXT NOT NULL,
            partner_id TEXT,
            message_id TEXT,
            reason     TEXT NOT NULL,
            detail     TEXT NOT NULL,
            payload    BLOB NOT NULL,
            created_at REAL NOT NULL
        )
        """,
        "CREATE INDEX dead_letters_source ON dead_letters (source, id)",
        "CREATE INDEX dead_letters_partner ON dead_letters (partner_id, id)",
        """
        CREATE TABLE actor_state (
            key        TEXT PRIMARY KEY,
            state      BLOB NOT NULL,
            updated_at REAL NOT NULL
        ) WITHOUT ROWID
        """,
    ),
    (
        # Outbound deliveries: one row per (partner, message), kept with the acceptance that
        # produced it. `next_attempt_at` survives a restart, so a schedule of hours (and a
        # partner's Retry-After) still holds after one.
        """
        CREATE TABLE deliveries (
            id              INTEGER PRIMARY KEY AUTOINCREMENT,
            partner_id      TEXT NOT NULL,
            message_id      TEXT NOT NULL,
            document_type   TEXT NOT NULL,
            aggregate_key   TEXT NOT NULL,
            correlation_id  TEXT NOT NULL,
            body            BLOB NOT NULL,
            state           TEXT NOT NULL DEFAULT 'pending'
                            CHECK (state IN ('pending', 'delivered', 'dead')),
            attempts        INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            created_at      REAL NOT NULL,
            settled_at      REAL,
            reason          TEXT,
            UNIQUE (partner_id, message_id)
        )
        """,
        # Pending rows only, by aggregate: "is an earlier one of this aggregate undelivered?"
        # and "this partner's next heads" stay cheap however many delivered rows are kept.
        """
        CREATE INDEX deliveries_pending
        ON deliveries (partner_id, aggregate_key, id) WHERE state = 'pending'
        """,
        "CREATE INDEX deliveries_settled ON deliveries (partner_id, settled_at)",
        """
        CREATE TABLE delivery_attempts (
            id            INTEGER PRIMARY KEY AUTOINCREMENT,
            delivery_id   INTEGER NOT NULL REFERENCES deliveries (id),
            attempted_at  REAL NOT NULL,
            status        INTEGER,
            latency_s     REAL NOT NULL,
            error         TEXT,
            response_head BLOB NOT NULL
        )
        """,
        "CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, id)",
        # An endpoint that answered 410 Gone stays disabled until an operator enables it.
        """
        CREATE TABLE endpoints (
            partner_id  TEXT PRIMARY KEY,
            disabled_at REAL,
            reason      TEXT
        ) WITHOUT ROWID
        """,
    ),
    (
        # The inbox becomes a rowid table in arrival order with a separate key index. Clustered
        # on (partner, key), each commit rewrote a leaf page per partner (a page per request
        # with random keys), and the created_at index was a third tree to update; the purge
        # now walks rowid order instead. Measured per inserted row, 32 rows a commit:
        # 12.4 -> 5.0 us CPU with sequential keys, 22.3 -> 8.1 us with UUID keys.
        """
        CREATE TABLE inbox_rowid (
            partner_id      TEXT NOT NULL,
            idempotency_key TEXT NOT NULL,
            body_hash       BLOB NOT NULL,
            status          INTEGER NOT NULL,
            response        BLOB NOT NULL,
            created_at      REAL NOT NULL
        )
        """,
        """
        INSERT INTO inbox_rowid (partner_id, idempotency_key, body_hash, status, response,
                                 created_at)
        SELECT partner_id, idempotency_key, body_hash, status, response, created_at
        FROM inbox ORDER BY created_at
        """,
        "DROP TABLE inbox",
        "ALTER TABLE inbox_rowid RENAME TO inbox",
        "CREATE UNIQUE INDEX inbox_key ON inbox (partner_id, idempotency_key)",
    ),
    (
        # One row per purchase-order thread: its state (the actor's msgpack) and the version
        # every step checks and bumps. (supplier, PO number) is the business reference every
        # document of the thread carries; (buyer, PO number) is how the ERP names it.
        """
        CREATE TABLE workflow_threads (
            id             INTEGER PRIMARY KEY AUTOINCREMENT,
            supplier       TEXT NOT NULL,
            po_number      TEXT NOT NULL,
            buyer          TEXT,
            correlation_id TEXT,
            status         TEXT NOT NULL,
            state          BLOB NOT NULL,
            version        INTEGER NOT NULL,
            created_at     REAL NOT NULL,
            updated_at     REAL NOT NULL,
            UNIQUE (supplier, po_number)
        )
        """,
        "CREATE INDEX workflow_threads_buyer ON workflow_threads (buyer, po_number)",
        "CREATE INDEX workflow_threads_correlation ON workflow_threads (correlation_id)",
        "CREATE INDEX workflow_threads_status ON workflow_threads (status)",
        # The thread's journal: each input applied (its row is the consumed mark: unique per
        # thread and message id) and each event emitted, in order. The trace reads it.
        """
        CREATE TABLE workflow_journal (
            id            INTEGER PRIMARY KEY AUTOINCREMENT,
            thread_id     INTEGER NOT NULL REFERENCES workflow_threads (id),
            message_id    TEXT NOT NULL,
            role          TEXT NOT NULL CHECK (role IN ('input', 'event')),
            causation_id  TEXT,
            document_type TEXT NOT NULL,
            partner_id    TEXT,
            channel       TEXT NOT NULL,
            occurred_at   REAL NOT NULL,
            applied_at    REAL NOT NULL,
            UNIQUE (thread_id, message_id)
        )
        """,
        # Durable timers, one per (thread, kind): re-arming bumps the generation, and firing
        # claims the row by generation in the step's own transaction, so a timer fires once.
        """
        CREATE TABLE workflow_timers (
            thread_id  INTEGER NOT NULL REFERENCES workflow_threads (id),
            kind       TEXT NOT NULL,
            due_at     REAL NOT NULL,
            generation INTEGER NOT NULL,
            state      TEXT NOT NULL CHECK (state IN ('armed', 'fired', 'cancelled')),
            PRIMARY KEY (thread_id, kind)
        ) WITHOUT ROWID
        """,
        # Armed timers only: the due scan and min(due_at) stay cheap (FIELD-NOTES: 27/11 us
        # at 200k timers).
        "CREATE INDEX workflow_timers_due ON workflow_timers (due_at) WHERE state = 'armed'",
        # How far the workflow feeders have read (outbox seq, delivery attempt id).
        """
        CREATE TABLE workflow_cursors (
            name     TEXT PRIMARY KEY,
            position INTEGER NOT NULL
        ) WITHOUT ROWID
        """,
    ),
    # Received files and the rows of a file being staged (gateway/store/files.py).
    files.MIGRATION,
    (
        # The deadline settings (opaque to the store) each supplier's armed timers were armed
        # under, "*" for suppliers without a row: a start under other settings re-times them.
        """
        CREATE TABLE workflow_deadlines (
            supplier TEXT PRIMARY KEY,
            settings BLOB NOT NULL
        ) WITHOUT ROWID
        """,
    ),
    # X12: interchanges seen, control-number sequences, files to send, sets sent (store/edi.py).
    edi.MIGRATION,
    # 8: inventory positions, consumed marks, drift and the availability read model
    # (store/inventory.py).
    inventory.MIGRATION,
    # 9: a PO number alone finds its threads in one seek (the console's search, `gateway
    # trace PO`, /purchase-orders): the (supplier, po_number) key needs the supplier first.
    ("CREATE INDEX workflow_threads_po ON workflow_threads (po_number)",),
    # 10: customer orders' status read model (store/orders.py).
    orders.MIGRATION,
    # 11: what the purge walks settled customer orders and the X12 tables by (retention.py).
    retention.MIGRATION,
)
SCHEMA_VERSION = len(MIGRATIONS)


def prepare_writer(
    conn: sqlite3.Connection,
    *,
    synchronous: Synchronous,
    busy_timeout_ms: int,
    journal_size_limit: int,
) -> None:
    """Set the writer connection's pragmas and bring the schema to `SCHEMA_VERSION`."""
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise ConfigError(f"the store needs WAL journaling; SQLite answered {mode!r}")
    _common_pragmas(conn, busy_timeout_ms)
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    # A checkpointed WAL is truncated back to this size instead of keeping its peak forever.
    conn.execute(f"PRAGMA journal_size_limit = {int(journal_size_limit)}")
    migrate(conn)


def prepare_reader(conn: sqlite3.Connection, *, busy_timeout_ms: int) -> None:
    """Set the read connection's pragmas; it refuses writes, so all writes go to the writer."""
    _common_pragmas(conn, busy_timeout_ms)
    conn.execute("PRAGMA query_only = ON")


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the migrations this database has not seen; return the version it started at."""
    # Opening an up-to-date store takes no write lock.
    if _checked_version(conn) == SCHEMA_VERSION:
        return SCHEMA_VERSION
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = _checked_version(conn)  # again, under the lock
        for statements in MIGRATIONS[version:]:
            for statement in statements:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return version


def _checked_version(conn: sqlite3.Connection) -> int:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise ConfigError(
            f"the store's schema is version {version}, newer than this gateway's "
            f"{SCHEMA_VERSION}: run the newer gateway or restore an older database"
        )
    return version


def _common_pragmas(conn: sqlite3.Connection, busy_timeout_ms: int) -> None:
    # Another process (the CLI) may hold the write lock for a moment: wait rather than fail.
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    conn.execute("PRAGMA foreign_keys = ON")
    # Statement journals (a multi-row INSERT, a SAVEPOINT) in memory: on disk, SQLite created
    # and unlinked a temp file for nearly every group commit.
    conn.execute("PRAGMA temp_store = MEMORY")
