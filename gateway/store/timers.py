"""Durable timers of the workflow threads: armed, cancelled and claimed with a step; read when due.

A timer is one row per (thread, kind). Arming an armed timer moves it and bumps its
generation; cancelling bumps it too, so a firing read before the change no longer matches.
Firing is a claim: the thread's step marks the row fired only if it is still armed at the
generation the timer service read, in the step's own transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence

import aiosqlite
from msgspec import Struct

__all__ = [
    "DueTimer",
    "Rewrite",
    "arm",
    "armed_suppliers",
    "cancel",
    "claim",
    "deadline_settings",
    "due",
    "next_due",
    "overdue_count",
    "retime",
    "save_deadline_settings",
]

# Threads whose state one statement of `retime` reads (and rewrites) at a time.
RETIME_CHUNK = 1000

Rewrite = Callable[[bytes, Sequence[tuple[str, float]]], bytes]
"""Given a thread's stored state and the (kind, seconds) moves, its state with them applied."""


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


def retime(
    supplier: str,
    moves: Sequence[tuple[str, float]],
    rewrite: Rewrite,
    settings: bytes,
    conn: sqlite3.Connection,
    now: float,
) -> int:
    """Move `supplier`'s armed timers of each kind by its seconds, and record `settings` as
    what they are now armed under; the number of timers moved.

    One transaction (its group commit): the rows, each thread's state (through `rewrite`, the
    thread's own format: the store does not read it) and the settings move together, so a
    crash leaves all of it as before and the next start moves it again, once. Each moved
    timer's generation is bumped like a re-arm, and each thread's version, so a firing or a
    step read before the move is stale.
    """
    kinds = [kind for kind, _ in moves]
    marks = ",".join("?" * len(kinds))
    after = 0
    while kinds:
        chunk = conn.execute(
            f"""
            SELECT t.id, t.state FROM workflow_threads AS t
            WHERE t.supplier = ? AND t.id > ? AND EXISTS (
                SELECT 1 FROM workflow_timers AS w
                WHERE w.thread_id = t.id AND w.state = 'armed' AND w.kind IN ({marks}))
            ORDER BY t.id LIMIT ?
            """,
            (supplier, after, *kinds, RETIME_CHUNK),
        ).fetchall()
        if not chunk:
            break
        conn.executemany(
            "UPDATE workflow_threads SET state = ?, version = version + 1, updated_at = ?"
            " WHERE id = ?",
            [(rewrite(bytes(state), moves), now, thread_id) for thread_id, state in chunk],
        )
        after = chunk[-1][0]
    moved = 0
    for kind, seconds in moves:
        moved += conn.execute(
            """
            UPDATE workflow_timers SET due_at = due_at + ?, generation = generation + 1
            WHERE state = 'armed' AND kind = ?
              AND thread_id IN (SELECT id FROM workflow_threads WHERE supplier = ?)
            """,
            (float(seconds), kind, supplier),
        ).rowcount
    save_deadline_settings({supplier: settings}, conn, now)
    return moved


def save_deadline_settings(
    settings: dict[str, bytes], conn: sqlite3.Connection, now: float
) -> None:
    """Record what each supplier's (or "*", every other supplier's) timers are armed under."""
    conn.executemany(
        """
        INSERT INTO workflow_deadlines (supplier, settings) VALUES (?, ?)
        ON CONFLICT (supplier) DO UPDATE SET settings = excluded.settings
        """,
        list(settings.items()),
    )


# Reads, on the read connection.


async def deadline_settings(db: aiosqlite.Connection) -> dict[str, bytes]:
    """The settings each supplier's armed timers were armed under, as last recorded."""
    rows = await db.execute_fetchall("SELECT supplier, settings FROM workflow_deadlines")
    return {supplier: bytes(settings) for supplier, settings in rows}


async def armed_suppliers(db: aiosqlite.Connection) -> list[str]:
    """The suppliers that have threads with an armed timer."""
    rows = await db.execute_fetchall(
        """
        SELECT DISTINCT t.supplier FROM workflow_timers AS w
        JOIN workflow_threads AS t ON t.id = w.thread_id WHERE w.state = 'armed'
        """
    )
    return sorted(supplier for (supplier,) in rows)


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
