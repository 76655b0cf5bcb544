"""Workflow writes: one thread step as one transaction, and the feeders' cursors.

Each function here is a group-commit operation: bound with `functools.partial` by
`WorkflowLedger`, pickled to the writer process and run there inside `commit_batch`. In one
step the input's consumed mark, the version check, the new state, the outbox rows of the
emitted events and the timer changes commit together or not at all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Literal

from msgspec import Struct

from gateway.store import timers

__all__ = [
    "EventRow",
    "JournalEntry",
    "Outcome",
    "StepRecord",
    "StepResult",
    "apply_step",
    "queue_events",
    "save_cursor",
]


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
    queue_events(step.events, conn, now)
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


def queue_events(events: Sequence[EventRow], conn: sqlite3.Connection, now: float) -> None:
    """Put emitted events in the outbox, inside the caller's transaction."""
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
            for e in events
        ],
    )


def save_cursor(name: str, position: int, conn: sqlite3.Connection, now: float) -> None:
    """Move a feeder's cursor forward (never back: a late writer cannot undo progress)."""
    conn.execute(
        """
        INSERT INTO workflow_cursors (name, position) VALUES (?, ?)
        ON CONFLICT (name) DO UPDATE SET position = max(position, excluded.position)
        """,
        (name, position),
    )
