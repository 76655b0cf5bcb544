"""What the purchase-order threads need from the store, as Protocols and values the gateway
implements (gateway/workflow.py adapts `store.workflow`): the actors import no store.

- `ThreadLedger`: load a thread, commit one step in one transaction (`StepCommit`).
- `CommittedInputs`: what the gateway committed that threads take, read from a cursor.
- `DueTimers`: the durable timers that are due, for the timer service.
"""

from __future__ import annotations

from typing import Literal, Protocol

from msgspec import Struct

from actors.workflow.inputs import ThreadInput, ThreadKey, TimerKind

__all__ = [
    "CommittedDocument",
    "CommittedInputs",
    "DueTimer",
    "DueTimers",
    "EventRecord",
    "SettledDelivery",
    "StepCommit",
    "StepOutcome",
    "ThreadLedger",
    "ThreadRecord",
]

StepOutcome = Literal["applied", "duplicate", "stale", "conflict"]
"""applied; the input was applied before; its timer was re-armed or fired since; the thread is
at another version (nothing was written but for "applied")."""


class ThreadRecord(Struct, frozen=True, kw_only=True):
    """A thread's saved state and the version its next step must name."""

    version: int
    state: bytes


class EventRecord(Struct, frozen=True, kw_only=True):
    """One event to publish with the step: an outbox row, envelope encoded."""

    message_id: str
    partner_id: str
    document_type: str
    schema_version: int
    routing_key: str
    correlation_id: str
    causation_id: str
    body: bytes


class StepCommit(Struct, frozen=True, kw_only=True):
    """One step, to commit whole or not at all with the input's consumed mark."""

    key: ThreadKey
    expected_version: int
    input: ThreadInput
    state: bytes
    status: str
    buyer: str | None
    correlation_id: str | None
    events: tuple[EventRecord, ...] = ()
    arm: tuple[tuple[TimerKind, float], ...] = ()
    cancel: tuple[TimerKind, ...] = ()
    # A timer's firing claims its (kind, generation): if it was re-armed or fired since, the
    # step is "stale" and nothing is written.
    claim: tuple[TimerKind, int] | None = None


class ThreadLedger(Protocol):
    """Where a thread's state lives between steps."""

    async def load(self, key: ThreadKey) -> ThreadRecord | None: ...

    async def commit(self, step: StepCommit) -> tuple[StepOutcome, int]:
        """Commit a step; answer the outcome and the thread's version after it."""
        ...


class CommittedDocument(Struct, frozen=True, kw_only=True):
    """A committed outbox row a thread may take: its position, sender, envelope, commit time."""

    position: int
    partner_id: str
    body: bytes
    accepted_at: float


class SettledDelivery(Struct, frozen=True, kw_only=True):
    """An order's delivery to a partner that settled (delivered or dead)."""

    position: int
    delivery_id: int
    partner_id: str
    message_id: str
    document_type: str
    outcome: Literal["delivered", "dead"]
    settled_at: float
    reason: str | None
    body: bytes


class CommittedInputs(Protocol):
    """The inputs the gateway committed, each source read in order from a saved cursor."""

    async def cursor(self, name: str) -> int:
        """Where reading `name` resumes: its saved cursor; for a source never read, where it
        stands now (turning the threads on over a store with history does not replay it)."""
        ...

    async def save_cursor(self, name: str, position: int) -> None: ...

    async def documents_after(
        self, position: int, limit: int
    ) -> tuple[list[CommittedDocument], int]:
        """Up to `limit` documents after `position`, and the position read up to (past any
        rows no thread takes)."""
        ...

    async def deliveries_after(
        self, position: int, limit: int
    ) -> tuple[list[SettledDelivery], int]:
        """Settled deliveries after `position`, and the position read up to."""
        ...


class DueTimer(Struct, frozen=True, kw_only=True):
    """An armed timer whose time has come."""

    key: ThreadKey
    kind: TimerKind
    generation: int
    due_at: float


class DueTimers(Protocol):
    async def next_due(self) -> float | None: ...

    async def due(self, now: float, limit: int) -> list[DueTimer]: ...
