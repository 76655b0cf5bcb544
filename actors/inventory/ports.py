"""What the inventory positions need from the store, as Protocols and values the gateway
implements (gateway/inventory.py adapts `store.inventory`): the actors import no store.

- `PositionLedger`: load a position, commit one step in one transaction (`PositionCommit`).
- `InventoryInputs`: the committed inventory documents after a cursor, and the positions
  whose gap or coalesced event is due.
"""

from __future__ import annotations

from typing import Literal, Protocol

from msgspec import Struct

from actors.inventory.inputs import PositionKey
from actors.workflow.ports import CommittedDocument, EventRecord
from canonical.availability import Availability

__all__ = [
    "CommittedDocument",
    "EventRecord",
    "InventoryInputs",
    "PositionCommit",
    "PositionLabel",
    "PositionLedger",
    "PositionRecord",
    "StepOutcome",
]

StepOutcome = Literal["applied", "duplicate", "conflict"]
"""applied; the input's consumed mark was there; the position is at another version."""
PositionLabel = Literal["in_step", "gap", "needs_snapshot"]


class PositionRecord(Struct, frozen=True, kw_only=True):
    """A position's saved state and the version its next step must name."""

    version: int
    state: bytes


class PositionCommit(Struct, frozen=True, kw_only=True):
    """One step, committed whole or not at all with the input's consumed mark."""

    key: PositionKey
    expected_version: int
    # The input's message id (its consumed mark); None for a tick, which the state guards.
    message_id: str | None
    state: bytes
    label: PositionLabel
    # When the feeder is to tick the position (a gap to raise, an event to publish).
    due_at: float | None
    # The read model row, when the buckets or the flags changed.
    availability: Availability | None = None
    events: tuple[EventRecord, ...] = ()
    # The drift a snapshot found (an `inventory_drift` document, JSON), recorded with the step.
    drift: bytes | None = None


class PositionLedger(Protocol):
    """Where a position's state lives between steps."""

    async def load(self, key: PositionKey) -> PositionRecord | None: ...

    async def commit(self, step: PositionCommit) -> tuple[StepOutcome, int]:
        """Commit a step; answer the outcome and the position's version after it."""
        ...


class InventoryInputs(Protocol):
    """The committed inventory documents, read in order from a saved cursor."""

    async def cursor(self) -> int:
        """Where reading resumes; for a store never read, where it stands now."""
        ...

    async def save_cursor(self, position: int) -> None: ...

    async def documents_after(
        self, position: int, limit: int
    ) -> tuple[list[CommittedDocument], int]:
        """Up to `limit` inventory documents after `position`, and the position read up to."""
        ...

    async def due(self, now: float, limit: int) -> list[PositionKey]:
        """Positions whose gap or coalesced event is due at `now`."""
        ...
