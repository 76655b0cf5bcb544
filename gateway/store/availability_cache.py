"""The availability read model's rows kept in memory by SKU, in step with the ledger's writes.

The customer API's availability read is the gateway's hottest read (bench availability): a
SQLite point lookup of ten SKUs costs more than serving the answer. The read model has one
writer, the inventory positions' step (`InventoryLedger.apply_step`), and it runs through
the same ledger object that reads: each applied step puts its new row here after its commit,
so a cached SKU never falls behind an acknowledged write. A write whose outcome is unknown
(the writer failed) forgets the SKU. Reads fill the cache with every location of a SKU (an
unknown SKU too, as no rows), unless a write ended while the read was on another thread
(`epoch`): that read may have seen the rows before the commit.

Bounded by rows (`max_rows`); past it the oldest filled SKUs go first. 0 turns it off.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

import msgspec

__all__ = ["DEFAULT_CACHE_ROWS", "AvailabilityCache", "AvailabilityJson", "row"]

# A read model row as stored: (sku, location_id, its as_of, the JSON of its `Availability`).
# `as_of` is decoded once, when the row is read or written, not on every answer.
AvailabilityJson = tuple[str, str, dt.datetime, bytes]


class _Stamp(msgspec.Struct):
    # The one field of a stored row the answer needs apart from the JSON; msgspec skips the rest.
    as_of: dt.datetime


_stamp = msgspec.json.Decoder(_Stamp)


def row(sku: str, location_id: str, body: bytes) -> AvailabilityJson:
    """The row of `body` (an `Availability` as JSON) at (sku, location_id)."""
    return (sku, location_id, _stamp.decode(body).as_of, body)


# About 400 bytes a row in memory (body, tuple, strings): 50,000 rows are some 20 MB.
DEFAULT_CACHE_ROWS = 50_000


class AvailabilityCache:
    """Rows by SKU (every location, sorted by location); see the module's docstring."""

    def __init__(self, max_rows: int = DEFAULT_CACHE_ROWS) -> None:
        if max_rows < 0:
            raise ValueError("max_rows must be 0 (off) or more")
        self.max_rows = max_rows
        self.epoch = 0  # moves at the end of every write: see `fill`
        self._skus: dict[str, tuple[AvailabilityJson, ...]] = {}
        self._rows = 0

    def __len__(self) -> int:
        """Rows held (an unknown SKU's entry counts as one)."""
        return self._rows

    def get(self, sku: str) -> tuple[AvailabilityJson, ...] | None:
        """Every location's row of `sku` (empty: no position knows it); None: not held."""
        return self._skus.get(sku)

    def lookup(
        self, skus: Sequence[str]
    ) -> tuple[list[tuple[str, tuple[AvailabilityJson, ...] | None]], list[str]]:
        """`get` of each SKU in order, and the SKUs not held."""
        get = self._skus.get
        held = [(sku, get(sku)) for sku in skus]
        return held, [sku for sku, rows in held if rows is None]

    def fill(
        self, rows_by_sku: Iterable[tuple[str, tuple[AvailabilityJson, ...]]], epoch: int
    ) -> None:
        """Hold what a read found, read when `epoch` was current; a write ended since: skip."""
        if epoch != self.epoch or not self.max_rows:
            return
        for sku, rows in rows_by_sku:
            self._drop(sku)
            size = max(1, len(rows))
            while self._skus and self._rows + size > self.max_rows:
                self._drop(next(iter(self._skus)))  # the oldest filled
            if size <= self.max_rows:
                self._skus[sku] = rows
                self._rows += size

    def applied(self, sku: str, location_id: str, body: bytes) -> None:
        """A committed step wrote `body` as (sku, location_id)'s row."""
        self.epoch += 1
        held = self._skus.get(sku)
        if held is None:
            return
        others = [r for r in held if r[1] != location_id]
        rows = tuple(sorted([*others, row(sku, location_id, body)], key=_location))
        self._rows += max(1, len(rows)) - max(1, len(held))
        self._skus[sku] = rows

    def forget(self, sku: str) -> None:
        """A write's outcome is unknown: read `sku` from the store next time."""
        self.epoch += 1
        self._drop(sku)

    def clear(self) -> None:
        if self._skus:
            self.epoch += 1
        self._skus.clear()
        self._rows = 0

    def _drop(self, sku: str) -> None:
        held = self._skus.pop(sku, None)
        if held is not None:
            self._rows -= max(1, len(held))


def _location(found: AvailabilityJson) -> str:
    return found[1]
