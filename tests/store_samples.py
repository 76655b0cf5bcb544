"""Sample acceptances and plain-sqlite3 views shared by the store's tests."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from canonical.ids import new_message_id
from gateway.store import Acceptance, NewOutboxRow


def acceptance(
    key: str,
    *,
    partner: str = "acme",
    body: bytes = b'{"po": "PO-1"}',
    records: int = 1,
    record_size: int = 64,
    message_ids: tuple[str, ...] = (),
) -> Acceptance:
    """An acceptance of `body` under `key`: one outbox row per record, answer listing them."""
    ids = message_ids or tuple(new_message_id() for _ in range(records))
    rows = tuple(
        NewOutboxRow(
            message_id=message_id,
            document_type="purchase_order",
            schema_version=1,
            routing_key=f"purchase_order.{partner}",
            correlation_id=f"corr-{key}",
            causation_id=None,
            body=(message_id.encode() * (record_size // 36 + 1))[:record_size],
        )
        for message_id in ids
    )
    return Acceptance(
        partner_id=partner,
        idempotency_key=key,
        body_hash=hashlib.sha256(body).digest(),
        response_status=202,
        response_body=b'{"message_ids": ["' + '", "'.join(ids).encode() + b'"]}',
        records=rows,
    )


def select(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one query on a fresh plain sqlite3 connection: what another process would see."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql, params).fetchall()


@contextlib.contextmanager
def write_lock(path: Path) -> Iterator[sqlite3.Connection]:
    """Hold SQLite's write lock from another connection, so the store's writer waits for it.

    Roll the yielded connection back to let the writer in; it is rolled back on exit anyway.
    """
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def exit_writer(conn: sqlite3.Connection, now: float) -> None:
    """A store write that ends the writer process running it (the child needs `tests/` on
    PYTHONPATH to unpickle it)."""
    os._exit(7)
