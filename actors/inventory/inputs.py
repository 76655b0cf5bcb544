"""What an inventory position takes: a delta, a snapshot, or a tick of the clock."""

from __future__ import annotations

from typing import NamedTuple

from msgspec import Struct

from canonical.inventory import InventoryDelta, InventoryPosition

__all__ = [
    "INPUT_DOCUMENTS",
    "DeltaArrived",
    "PositionInput",
    "PositionKey",
    "SnapshotArrived",
    "Tick",
]

# The document types the positions take from the outbox.
INPUT_DOCUMENTS = ("inventory_delta", "inventory_position")


class PositionKey(NamedTuple):
    """One SKU at one location: the key of a position actor."""

    sku: str
    location_id: str


class DeltaArrived(Struct, frozen=True, kw_only=True):
    """A committed `inventory_delta` (its outbox message id is the consumed mark)."""

    message_id: str
    correlation_id: str
    accepted_at: float
    delta: InventoryDelta


class SnapshotArrived(Struct, frozen=True, kw_only=True):
    """A committed `inventory_position` snapshot."""

    message_id: str
    correlation_id: str
    accepted_at: float
    position: InventoryPosition


class Tick(Struct, frozen=True, kw_only=True):
    """The feeder found the position's gap or coalesced event due: look at the clock."""

    now: float


PositionInput = DeltaArrived | SnapshotArrived | Tick
