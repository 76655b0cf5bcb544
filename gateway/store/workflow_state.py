"""Workflow threads in the store: their state, journal, emitted events and timers.

`WorkflowLedger` (reach it as `store.workflow`) is the one face of them: its writes are the
group-commit operations of `workflow_steps` (one thread step, one transaction) and
`timers`; its reads the single statements of `workflow_reads` and `timers` on the read
connection. `reading` opens one over a store file for tools beside a running gateway.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, TypeVar

import aiosqlite

from gateway.store import timers
from gateway.store import workflow_reads as reads
from gateway.store import workflow_steps as steps
from gateway.store.access import Read, Write
from gateway.store.workflow_reads import CommittedInput, DeliverySettled, ThreadRow
from gateway.store.workflow_steps import (
    EventRow,
    JournalEntry,
    StepRecord,
    StepResult,
    apply_step,
)

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
                reads.threads,
                f"SELECT {reads.THREAD_COLUMNS} FROM workflow_threads"
                " WHERE supplier = ? AND po_number = ?",
                (supplier, po_number),
            )
        )
        return rows[0] if rows else None

    async def apply_step(self, step: StepRecord) -> StepResult:
        """Commit one thread step (in the next group commit); see `apply_step`."""
        return await self._write(partial(steps.apply_step, step))

    # The feeders' side

    async def cursor(self, name: str) -> int | None:
        """A feeder's saved cursor; None if it never saved one."""
        rows = await self._read(
            partial(reads.fetch, "SELECT position FROM workflow_cursors WHERE name = ?", (name,))
        )
        return int(rows[0][0]) if rows else None

    async def outbox_top(self) -> int:
        """The newest outbox row's seq (0 when empty)."""
        rows = await self._read(partial(reads.fetch, "SELECT max(seq) FROM outbox", ()))
        return int(rows[0][0] or 0)

    async def attempts_top(self) -> int:
        """The newest delivery attempt's id (0 when none)."""
        rows = await self._read(partial(reads.fetch, "SELECT max(id) FROM delivery_attempts", ()))
        return int(rows[0][0] or 0)

    async def save_cursor(self, name: str, position: int) -> None:
        await self._write(partial(steps.save_cursor, name, position))

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
        """See `workflow_reads.committed_inputs`."""
        return await self._read(
            partial(
                reads.committed_inputs,
                after_seq,
                limit,
                scan,
                erp_source,
                order_types,
                partner_types,
            )
        )

    async def settled_deliveries(
        self, after_attempt: int, limit: int, document_types: tuple[str, ...], *, scan: int
    ) -> tuple[list[DeliverySettled], int]:
        """See `workflow_reads.settled_deliveries`."""
        return await self._read(
            partial(reads.settled_deliveries, after_attempt, limit, document_types, scan)
        )

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
                reads.threads,
                f"SELECT {reads.THREAD_COLUMNS} FROM workflow_threads WHERE correlation_id = ?"
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
                reads.threads,
                f"SELECT {reads.THREAD_COLUMNS} FROM workflow_threads WHERE {where} ORDER BY id",
                tuple(params),
            )
        )

    async def journal(self, thread_id: int) -> list[tuple[Any, ...]]:
        """The thread's journal in order: (id, message_id, role, causation_id, document_type,
        partner_id, channel, occurred_at, applied_at)."""
        return await self._read(
            partial(
                reads.fetch,
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
                reads.fetch,
                "SELECT kind, due_at, generation, state FROM workflow_timers"
                " WHERE thread_id = ? ORDER BY due_at",
                (thread_id,),
            )
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    async def status_counts(self) -> dict[str, int]:
        """Threads per status."""
        rows = await self._read(
            partial(
                reads.fetch, "SELECT status, count(*) FROM workflow_threads GROUP BY status", ()
            )
        )
        return {status: int(count) for status, count in rows}

    async def overdue_timers(self, now: float) -> int:
        return await self._read(partial(timers.overdue_count, now=now))


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
