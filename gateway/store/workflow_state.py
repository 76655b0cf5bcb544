"""Workflow threads in the store: their state, journal, emitted events and timers, in one step.

`apply_step` is the thread's transaction: it rides a group commit like every other write, and
in it the input's consumed mark, the version check, the new state, the outbox rows of the
emitted events and the timer changes commit together or not at all. Reads are single
statements on the read connection, as in `queries`. Reach it as `store.workflow`.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, Literal, Protocol, TypeVar

import aiosqlite
from msgspec import Struct

from gateway.store import timers

__all__ = [
    "CommittedInput",
    "DeliverySettled",
    "EventRow",
    "JournalEntry",
    "StepRecord",
    "StepResult",
    "ThreadRow",
    "WorkflowLedger",
    "apply_step",
    "reading",
]

T = TypeVar("T")


class Write(Protocol):
    async def __call__(self, operation: Callable[[sqlite3.Connection, float], T], /) -> T: ...


class Read(Protocol):
    async def __call__(self, query: Callable[[aiosqlite.Connection], Awaitable[T]], /) -> T: ...


class JournalEntry(Struct, frozen=True, kw_only=True):
    """One line of a thread's journal: an input applied, or an event emitted."""

    message_id: str
    document_type: str
    channel: str
    occurred_at: float
    partner_id: str | None = None
    causation_id: str | None = None


class EventRow(Struct, frozen=True, kw_only=True):
    """One emitted event as an outbox row (the relay publishes it like any other)."""

    message_id: str
    partner_id: str
    document_type: str
    schema_version: int
    routing_key: str
    correlation_id: str
    causation_id: str
    body: bytes


class StepRecord(Struct, frozen=True, kw_only=True):
    """Everything one thread step writes, checked against `expected_version`."""

    supplier: str
    po_number: str
    buyer: str | None
    correlation_id: str | None
    status: str
    state: bytes
    expected_version: int
    input: JournalEntry
    # (kind, generation) of the timer this input is the firing of: claimed, or the step is stale.
    claim: tuple[str, int] | None = None
    events: tuple[EventRow, ...] = ()
    arm: tuple[tuple[str, float], ...] = ()
    cancel: tuple[str, ...] = ()


Outcome = Literal["applied", "duplicate", "stale", "conflict"]


class StepResult(Struct, frozen=True, kw_only=True):
    """What became of a step: applied (at `version`), or nothing written and why.

    "duplicate": the input's mark was there (applied before); "stale": the timer it fires was
    re-armed, cancelled or fired since; "conflict": the thread is at another `version`.
    """

    outcome: Outcome
    version: int


class ThreadRow(Struct, frozen=True, kw_only=True):
    """A thread as stored."""

    id: int
    supplier: str
    po_number: str
    buyer: str | None
    correlation_id: str | None
    status: str
    state: bytes
    version: int
    created_at: float
    updated_at: float


class CommittedInput(Struct, frozen=True, kw_only=True):
    """An outbox row a thread may take as input (its body is the encoded envelope)."""

    seq: int
    message_id: str
    partner_id: str
    document_type: str
    body: bytes
    created_at: float


class DeliverySettled(Struct, frozen=True, kw_only=True):
    """A delivery of an order (or change) that settled, seen through one of its attempts."""

    attempt_id: int
    delivery_id: int
    partner_id: str
    message_id: str
    document_type: str
    state: str
    body: bytes
    settled_at: float
    reason: str | None


_THREAD_COLUMNS = """
    id, supplier, po_number, buyer, correlation_id, status, state, version, created_at, updated_at
"""
_OUTBOX_INSERT = """
    INSERT INTO outbox (message_id, partner_id, document_type, schema_version, routing_key,
                        correlation_id, causation_id, idempotency_key, body, created_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_JOURNAL_INSERT = """
    INSERT INTO workflow_journal (thread_id, message_id, role, causation_id, document_type,
                                  partner_id, channel, occurred_at, applied_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


def apply_step(step: StepRecord, conn: sqlite3.Connection, now: float) -> StepResult:
    """Write one thread step whole, or nothing: see `StepResult` for what nothing means."""
    found = conn.execute(
        "SELECT id, version FROM workflow_threads WHERE supplier = ? AND po_number = ?",
        (step.supplier, step.po_number),
    ).fetchone()
    thread_id, version = (found[0], found[1]) if found else (None, 0)
    if (
        thread_id is not None
        and conn.execute(
            "SELECT 1 FROM workflow_journal WHERE thread_id = ? AND message_id = ?",
            (thread_id, step.input.message_id),
        ).fetchone()
    ):
        return StepResult(outcome="duplicate", version=version)
    if version != step.expected_version:
        return StepResult(outcome="conflict", version=version)
    if step.claim is not None and (
        thread_id is None or not timers.claim(conn, thread_id, *step.claim)
    ):
        return StepResult(outcome="stale", version=version)
    # Nothing was written above: every early answer leaves the transaction untouched.
    if thread_id is None:
        thread_id = (
            conn.execute(
                """
            INSERT INTO workflow_threads (supplier, po_number, buyer, correlation_id, status,
                                          state, version, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)
            """,
                (
                    step.supplier,
                    step.po_number,
                    step.buyer,
                    step.correlation_id,
                    step.status,
                    step.state,
                    now,
                    now,
                ),
            ).lastrowid
            or 0
        )
    else:
        conn.execute(
            """
            UPDATE workflow_threads SET buyer = ?, correlation_id = ?, status = ?, state = ?,
                                        version = version + 1, updated_at = ?
            WHERE id = ?
            """,
            (step.buyer, step.correlation_id, step.status, step.state, now, thread_id),
        )
    entry = step.input
    journal = [
        (
            thread_id,
            entry.message_id,
            "input",
            entry.causation_id,
            entry.document_type,
            entry.partner_id,
            entry.channel,
            entry.occurred_at,
            now,
        )
    ]
    conn.executemany(
        _OUTBOX_INSERT,
        [
            (
                e.message_id,
                e.partner_id,
                e.document_type,
                e.schema_version,
                e.routing_key,
                e.correlation_id,
                e.causation_id,
                e.message_id,  # an event's idempotency key is its own id
                e.body,
                now,
            )
            for e in step.events
        ],
    )
    journal += [
        (
            thread_id,
            e.message_id,
            "event",
            e.causation_id,
            e.document_type,
            e.partner_id,
            "amqp",
            now,
            now,
        )
        for e in step.events
    ]
    conn.executemany(_JOURNAL_INSERT, journal)
    timers.cancel(conn, thread_id, step.cancel)
    timers.arm(conn, thread_id, step.arm)
    return StepResult(outcome="applied", version=version + 1)


def save_cursor(name: str, position: int, conn: sqlite3.Connection, now: float) -> None:
    """Move a feeder's cursor forward (never back: a late writer cannot undo progress)."""
    conn.execute(
        """
        INSERT INTO workflow_cursors (name, position) VALUES (?, ?)
        ON CONFLICT (name) DO UPDATE SET position = max(position, excluded.position)
        """,
        (name, position),
    )


class WorkflowLedger:
    """The store's workflow calls; reach it as `store.workflow`."""

    def __init__(self, write: Write, read: Read) -> None:
        self._write = write
        self._read = read

    # The thread actors' side

    async def thread(self, supplier: str, po_number: str) -> ThreadRow | None:
        """The thread of (supplier, PO number), or None before its first step."""
        rows = await self._read(
            partial(
                _threads,
                f"SELECT {_THREAD_COLUMNS} FROM workflow_threads"
                " WHERE supplier = ? AND po_number = ?",
                (supplier, po_number),
            )
        )
        return rows[0] if rows else None

    async def apply_step(self, step: StepRecord) -> StepResult:
        """Commit one thread step (in the next group commit); see `apply_step`."""
        return await self._write(partial(apply_step, step))

    # The feeders' side

    async def cursor(self, name: str) -> int | None:
        """A feeder's saved cursor; None if it never saved one."""
        rows = await self._read(
            partial(_fetch, "SELECT position FROM workflow_cursors WHERE name = ?", (name,))
        )
        return int(rows[0][0]) if rows else None

    async def outbox_top(self) -> int:
        """The newest outbox row's seq (0 when empty)."""
        rows = await self._read(partial(_fetch, "SELECT max(seq) FROM outbox", ()))
        return int(rows[0][0] or 0)

    async def attempts_top(self) -> int:
        """The newest delivery attempt's id (0 when none)."""
        rows = await self._read(partial(_fetch, "SELECT max(id) FROM delivery_attempts", ()))
        return int(rows[0][0] or 0)

    async def save_cursor(self, name: str, position: int) -> None:
        await self._write(partial(save_cursor, name, position))

    async def committed_inputs(
        self,
        after_seq: int,
        limit: int,
        *,
        scan: int,
        erp_source: str,
        order_types: tuple[str, ...],
        partner_types: tuple[str, ...],
    ) -> tuple[list[CommittedInput], int]:
        """Outbox rows a thread may take (the ERP's orders, partners' other documents) among
        the next `scan` rows after `after_seq`, up to `limit`; and the seq read up to.

        Rows no thread takes are passed over by the second value, so a feeder's cursor moves
        through a stream of other documents instead of scanning them again on every pass.
        """
        top = await self._read(partial(_fetch, "SELECT max(seq) FROM outbox", ()))
        upper = min(int(top[0][0] or 0), after_seq + scan)
        order_marks = ",".join("?" * len(order_types))
        partner_marks = ",".join("?" * len(partner_types))
        rows = await self._read(
            partial(
                _fetch,
                f"""
                SELECT seq, message_id, partner_id, document_type, body, created_at
                FROM outbox
                WHERE seq > ? AND seq <= ? AND (
                    (document_type IN ({order_marks}) AND partner_id = ?)
                    OR document_type IN ({partner_marks}))
                ORDER BY seq LIMIT ?
                """,
                (after_seq, upper, *order_types, erp_source, *partner_types, limit),
            )
        )
        found = [
            CommittedInput(
                seq=r[0],
                message_id=r[1],
                partner_id=r[2],
                document_type=r[3],
                body=bytes(r[4]),
                created_at=r[5],
            )
            for r in rows
        ]
        reached = found[-1].seq if len(found) == limit else max(upper, after_seq)
        return found, reached

    async def settled_deliveries(
        self, after_attempt: int, limit: int, document_types: tuple[str, ...], *, scan: int
    ) -> tuple[list[DeliverySettled], int]:
        """Deliveries of `document_types` now delivered or dead with an attempt among the next
        `scan` after `after_attempt`, each once, by its last attempt; and the attempt id read
        up to.

        A delivery still pending is left out, and its attempts with it: it is listed once it
        settles, by the attempt that settled it (a replayed dead delivery settles again).
        """
        top = await self._read(partial(_fetch, "SELECT max(id) FROM delivery_attempts", ()))
        upper = min(int(top[0][0] or 0), after_attempt + scan)
        marks = ",".join("?" * len(document_types))
        rows = await self._read(
            partial(
                _fetch,
                f"""
                SELECT max(a.id) AS last, d.id, d.partner_id, d.message_id, d.document_type,
                       d.state, d.body, d.settled_at, d.reason
                FROM delivery_attempts AS a JOIN deliveries AS d ON d.id = a.delivery_id
                WHERE a.id > ? AND a.id <= ? AND d.document_type IN ({marks})
                  AND d.state IN ('delivered', 'dead')
                GROUP BY d.id ORDER BY last LIMIT ?
                """,
                (after_attempt, upper, *document_types, limit),
            )
        )
        found = [
            DeliverySettled(
                attempt_id=r[0],
                delivery_id=r[1],
                partner_id=r[2],
                message_id=r[3],
                document_type=r[4],
                state=r[5],
                body=bytes(r[6]),
                settled_at=r[7],
                reason=r[8],
            )
            for r in rows
        ]
        reached = found[-1].attempt_id if len(found) == limit else max(upper, after_attempt)
        return found, reached

    # The timer service's side

    async def next_due(self) -> float | None:
        return await self._read(timers.next_due)

    async def due(self, now: float, limit: int) -> list[timers.DueTimer]:
        return await self._read(partial(timers.due, now=now, limit=limit))

    # Re-timing at start, when a supplier's deadline settings changed

    async def deadline_settings(self) -> dict[str, bytes]:
        return await self._read(timers.deadline_settings)

    async def armed_suppliers(self) -> list[str]:
        return await self._read(timers.armed_suppliers)

    async def retime(
        self,
        supplier: str,
        moves: tuple[tuple[str, float], ...],
        rewrite: timers.Rewrite,
        settings: bytes,
    ) -> int:
        """Move a supplier's armed timers (see `timers.retime`); `rewrite` must pickle."""
        return await self._write(partial(timers.retime, supplier, moves, rewrite, settings))

    async def save_deadline_settings(self, settings: dict[str, bytes]) -> None:
        await self._write(partial(timers.save_deadline_settings, settings))

    # The operator's side (trace, metrics)

    async def thread_by_correlation(self, correlation_id: str) -> ThreadRow | None:
        rows = await self._read(
            partial(
                _threads,
                f"SELECT {_THREAD_COLUMNS} FROM workflow_threads WHERE correlation_id = ?"
                " ORDER BY id LIMIT 1",
                (correlation_id,),
            )
        )
        return rows[0] if rows else None

    async def threads_of_order(self, po_number: str, buyer: str | None = None) -> list[ThreadRow]:
        """The threads of a PO number (of one buyer, when given): usually one."""
        where, params = "po_number = ?", [po_number]
        if buyer is not None:
            where, params = "buyer = ? AND po_number = ?", [buyer, po_number]
        return await self._read(
            partial(
                _threads,
                f"SELECT {_THREAD_COLUMNS} FROM workflow_threads WHERE {where} ORDER BY id",
                tuple(params),
            )
        )

    async def journal(self, thread_id: int) -> list[tuple[Any, ...]]:
        """The thread's journal in order: (id, message_id, role, causation_id, document_type,
        partner_id, channel, occurred_at, applied_at)."""
        return await self._read(
            partial(
                _fetch,
                """
                SELECT id, message_id, role, causation_id, document_type, partner_id, channel,
                       occurred_at, applied_at
                FROM workflow_journal WHERE thread_id = ? ORDER BY id
                """,
                (thread_id,),
            )
        )

    async def timers_of(self, thread_id: int) -> list[tuple[str, float, int, str]]:
        """The thread's timers: (kind, due_at, generation, state)."""
        rows = await self._read(
            partial(
                _fetch,
                "SELECT kind, due_at, generation, state FROM workflow_timers"
                " WHERE thread_id = ? ORDER BY due_at",
                (thread_id,),
            )
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    async def status_counts(self) -> dict[str, int]:
        """Threads per status."""
        rows = await self._read(
            partial(_fetch, "SELECT status, count(*) FROM workflow_threads GROUP BY status", ())
        )
        return {status: int(count) for status, count in rows}

    async def overdue_timers(self, now: float) -> int:
        return await self._read(partial(timers.overdue_count, now=now))


async def _fetch(sql: str, params: tuple[object, ...], db: aiosqlite.Connection) -> list[Any]:
    return list(await db.execute_fetchall(sql, params))


async def _threads(
    sql: str, params: tuple[object, ...], db: aiosqlite.Connection
) -> list[ThreadRow]:
    return [
        ThreadRow(
            id=r[0],
            supplier=r[1],
            po_number=r[2],
            buyer=r[3],
            correlation_id=r[4],
            status=r[5],
            state=bytes(r[6]),
            version=r[7],
            created_at=r[8],
            updated_at=r[9],
        )
        for r in await db.execute_fetchall(sql, params)
    ]


@asynccontextmanager
async def reading(
    path: str | os.PathLike[str], *, busy_timeout_ms: int = 5000
) -> AsyncIterator[WorkflowLedger]:
    """A `WorkflowLedger` that only reads, on its own read-only connection to the file.

    For tools beside a running gateway (`gateway trace`): no writer process is started, and a
    write through it raises.
    """
    uri = f"file:{os.fspath(path)}?mode=ro"
    db = await aiosqlite.connect(uri, uri=True, isolation_level=None)
    try:
        await db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        await db.execute("PRAGMA query_only = ON")

        async def read(query: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
            return await query(db)

        async def write(operation: Callable[[sqlite3.Connection, float], T]) -> T:
            raise sqlite3.OperationalError("this ledger only reads")

        yield WorkflowLedger(write, read)
    finally:
        await db.close()
