"""The reads, each one statement (one thread hop) on the read-only connection.

`pending_now` is the exception: the relay's read, on the writer process's own connection.

Every read is a short autocommit statement: a WAL reader that stayed open would pin the
snapshot and keep checkpoints from ever shrinking the WAL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

import aiosqlite

from canonical.outbox import OutboxRecord
from gateway.store.records import DeadLetter

__all__ = [
    "conditions",
    "dead_letters",
    "load_state",
    "matching",
    "outbox_backlog",
    "pending",
    "pending_now",
]


def conditions(*filters: tuple[str, object]) -> tuple[list[str], list[object]]:
    """The clauses and parameters of each (clause, value) filter whose value is not None.

    Clauses come from our own code, never from a caller's input; values are parameters.
    """
    where: list[str] = []
    params: list[object] = []
    for clause, value in filters:
        if value is not None:
            where.append(clause)
            params.append(value)
    return where, params


def matching(
    after_id: int, filters: dict[str, object], *, alias: str = ""
) -> tuple[str, list[object]]:
    """The WHERE clause and parameters for `id > after_id` plus each filter that is not None."""
    prefix = f"{alias}." if alias else ""
    where, params = conditions(
        (f"{prefix}id > ?", after_id),
        *((f"{prefix}{column} = ?", value) for column, value in filters.items()),
    )
    return " AND ".join(where), params


_PENDING = """
    SELECT seq, message_id, partner_id, document_type, schema_version, routing_key,
           correlation_id, causation_id, idempotency_key, body, created_at, attempts
    FROM outbox WHERE state = 'pending' AND seq > ? ORDER BY seq LIMIT ?
"""


async def pending(db: aiosqlite.Connection, limit: int, after_seq: int) -> list[OutboxRecord]:
    """Return up to `limit` pending outbox rows with seq > `after_seq`, in seq order."""
    return _outbox_records(await db.execute_fetchall(_PENDING, (after_seq, limit)))


def pending_now(conn: sqlite3.Connection, limit: int, after_seq: int) -> list[OutboxRecord]:
    """`pending` on a plain connection: the relay's read, in the writer process."""
    return _outbox_records(conn.execute(_PENDING, (after_seq, limit)).fetchall())


def _outbox_records(rows: Iterable[Sequence[Any]]) -> list[OutboxRecord]:
    return [
        OutboxRecord(
            seq=row[0],
            message_id=row[1],
            partner_id=row[2],
            document_type=row[3],
            schema_version=row[4],
            routing_key=row[5],
            correlation_id=row[6],
            causation_id=row[7],
            idempotency_key=row[8],
            body=row[9],
            created_at=row[10],
            attempts=row[11],
        )
        for row in rows
    ]


async def outbox_backlog(db: aiosqlite.Connection) -> tuple[int, float | None]:
    """Return (pending rows, created_at of the oldest pending row or None)."""
    rows = await db.execute_fetchall(
        """
        SELECT count(*),
               (SELECT created_at FROM outbox WHERE state = 'pending' ORDER BY seq LIMIT 1)
        FROM outbox WHERE state = 'pending'
        """
    )
    count, oldest = next(iter(rows))
    return int(count), oldest


async def dead_letters(
    db: aiosqlite.Connection,
    *,
    source: str | None,
    partner_id: str | None,
    message_id: str | None,
    after_id: int,
    limit: int,
) -> list[DeadLetter]:
    """Return up to `limit` dead letters with id > `after_id` matching every filter given."""
    where, params = matching(
        after_id, {"source": source, "partner_id": partner_id, "message_id": message_id}
    )
    params.append(limit)
    rows = await db.execute_fetchall(
        f"""
        SELECT id, source, partner_id, message_id, reason, detail, payload, created_at
        FROM dead_letters WHERE {where} ORDER BY id LIMIT ?
        """,
        params,
    )
    return [
        DeadLetter(
            id=row[0],
            source=row[1],
            partner_id=row[2],
            message_id=row[3],
            reason=row[4],
            detail=row[5],
            payload=row[6],
            created_at=row[7],
        )
        for row in rows
    ]


async def load_state(db: aiosqlite.Connection, key: str) -> bytes | None:
    """Return one actor's persisted state, or None if it has none."""
    rows = await db.execute_fetchall("SELECT state FROM actor_state WHERE key = ?", (key,))
    for (state,) in rows:
        return bytes(state)
    return None
