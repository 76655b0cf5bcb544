"""An inventory position's state: its buckets, where its deltas stand, and what it holds back."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import msgspec
from msgspec import Struct

from canonical.inventory import InventoryDelta

__all__ = ["BUCKETS", "Buckets", "PositionState", "decode_state", "encode_state"]

BUCKETS = ("on_hand", "allocated", "in_transit", "quarantined")
_ZERO = Decimal(0)


class Buckets(Struct, frozen=True, kw_only=True):
    """The kept buckets; `available` is derived from them, never an input."""

    on_hand: Decimal = _ZERO
    allocated: Decimal = _ZERO
    in_transit: Decimal = _ZERO
    quarantined: Decimal = _ZERO

    @property
    def available(self) -> Decimal:
        # In-transit stock is not available until received (canonical/inventory.py).
        return self.on_hand - self.allocated - self.quarantined

    def plus(self, delta: InventoryDelta) -> Buckets:
        return Buckets(**{b: getattr(self, b) + getattr(delta, b) for b in BUCKETS})

    def minus(self, other: Buckets) -> Buckets:
        return Buckets(**{b: getattr(self, b) - getattr(other, b) for b in BUCKETS})

    def negative(self) -> tuple[str, ...]:
        return tuple(b for b in BUCKETS if getattr(self, b) < 0)


class PositionState(Struct, frozen=True, kw_only=True):
    """Everything a position needs to apply its next input."""

    uom: str | None = None
    buckets: Buckets = Buckets()
    # The last sequence applied: 0 before any (the first delta must be 1); None after a
    # snapshot, when the next delta newer than the snapshot starts the run again.
    last_sequence: int | None = 0
    # The newest input applied (a delta's occurred_at, a snapshot's as_of).
    as_of: dt.datetime | None = None
    snapshot_at: dt.datetime | None = None
    # Deltas beyond a gap, by sequence, waiting for the missing ones.
    held: tuple[InventoryDelta, ...] = ()
    # When the current gap opened (gateway clock); None without a gap.
    gap_since: float | None = None
    needs_snapshot: bool = False
    # The last delta ids applied, newest last (bounded): tells a duplicate from a stale one.
    recent_ids: tuple[str, ...] = ()
    # When the last availability_changed was published, and whether a change waits for one.
    published_at: float | None = None
    publish_pending: bool = False


_encoder = msgspec.json.Encoder(decimal_format="string")
_decoder = msgspec.json.Decoder(PositionState)


def encode_state(state: PositionState) -> bytes:
    return _encoder.encode(state)


def decode_state(blob: bytes) -> PositionState:
    return _decoder.decode(blob)
