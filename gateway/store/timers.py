"""Durable timers of the workflow threads: armed, cancelled and claimed with a step; read when due.

A timer is one row per (thread, kind). Arming an armed timer moves it and bumps its
generation; cancelling bumps it too, so a firing read before the change no longer matches.
Firing is a claim: the thread's step marks the row fired only if it is still armed at the
generation the timer service read, in the step's own transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

import aiosqlite
from msgspec import Struct

__all__ = ["DueTimer", "arm", "cancel", "claim", "due", "next_due", "overdue_count"]


class DueTimer(Struct, frozen=True, kw_only=True):
    """An armed timer whose due time has come, with its thread's business reference."""

    supplier: str
    po_number: str
    kind: str
    generation: int
    due_at: float


# Writes, inside a workflow step's transaction.


def arm(conn: sqlite3.Connection, thread_id: int, timers: Iterable[tuple[str, float]]) -> None:
    conn.executemany(
        """
        INSERT INTO workflow_timers (thread_id, kind, due_at, generation, state)
        VALUES (?, ?, ?, 1, 'armed')
        ON CONFLICT (thread_id, kind) DO UPDATE SET due_at = excluded.due_at,
                                                    generation = generation + 1,
                                                    state = 'armed'
        """,
        [(thread_id, kind, due_at) for kind, due_at in timers],
    )


def cancel(conn: sqlite3.Connection, thread_id: int, kinds: Iterable[str]) -> None:
    conn.executemany(
        """
        UPDATE workflow_timers SET state = 'cancelled', generation = generation + 1
        WHERE thread_id = ? AND kind = ? AND state = 'armed'
        """,
        [(thread_id, kind) for kind in kinds],
    )


def claim(conn: sqlite3.Connection, thread_id: int, kind: str, generation: int) -> bool:
    """Mark the timer fired if it is still armed at `generation`; False if it is not."""
    cursor = conn.execute(
        """
        UPDATE workflow_timers SET state = 'fired'
        WHERE thread_id = ? AND kind = ? AND generation = ? AND state = 'armed'
        """,
        (thread_id, kind, generation),
    )
    return cursor.rowcount == 1


# Reads, on the read connection.


async def next_due(db: aiosqlite.Connection) -> float | None:
    """The earliest due time of an armed timer, or None when none is armed."""
    rows = await db.execute_fetchall(
        "SELECT min(due_at) FROM workflow_timers WHERE state = 'armed'"
    )
    for (due_at,) in rows:
        return None if due_at is None else float(due_at)
    return None


async def due(db: aiosqlite.Connection, now: float, limit: int) -> list[DueTimer]:
    """Up to `limit` armed timers due at or before `now`, earliest first."""
    rows = await db.execute_fetchall(
        """
        SELECT t.supplier, t.po_number, w.kind, w.generation, w.due_at
        FROM workflow_timers AS w JOIN workflow_threads AS t ON t.id = w.thread_id
        WHERE w.state = 'armed' AND w.due_at <= ?
        ORDER BY w.due_at LIMIT ?
        """,
        (now, limit),
    )
    return [
        DueTimer(supplier=r[0], po_number=r[1], kind=r[2], generation=r[3], due_at=r[4])
        for r in rows
    ]


async def overdue_count(db: aiosqlite.Connection, now: float) -> int:
    """Armed timers past their due time (they fire at once; a growing count is a stall)."""
    rows = await db.execute_fetchall(
        "SELECT count(*) FROM workflow_timers WHERE state = 'armed' AND due_at <= ?", (now,)
    )
    return int(next(iter(rows))[0])
