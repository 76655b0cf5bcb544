"""Inventory positions in the store: their state, consumed marks, drift, and the availability
read model the customer API serves.

`InventoryLedger` (reach it as `store.inventory`) is the one face of them. Its write is one
position step as one group-commit operation (`apply_step`, run in the writer process): the
input's consumed mark, the version check, the new state, the read model row, the drift record
and the outbox rows of the events commit together or not at all. Its reads run on the read
connection; `availability` answers the customer API (up to `MAX_SKUS` SKUs per call).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from functools import partial
from typing import Any, Literal

import aiosqlite
import msgspec
from msgspec import Struct

from canonical.availability import Availability
from canonical.errors import GatewayError
from gateway.store.access import Read, Write
from gateway.store.availability_cache import (
    DEFAULT_CACHE_ROWS,
    AvailabilityCache,
    AvailabilityJson,
)
from gateway.store.availability_cache import row as availability_row
from gateway.store.workflow_steps import EventRow, queue_events

__all__ = [
    "CURSOR",
    "MAX_SKUS",
    "MIGRATION",
    "AvailabilityJson",
    "CommittedRow",
    "InventoryLedger",
    "PositionRow",
    "PositionStep",
    "TooManySkus",
    "apply_step",
]


# The customer API asks for at most this many SKUs at once.
MAX_SKUS = 100
# The feeder's cursor, a row of `workflow_cursors` (one table for every feeder's cursor).
CURSOR = "inventory.documents"
_INPUT_TYPES = ("inventory_delta", "inventory_position")

# Migration 8 (gateway/store/schema.py).
MIGRATION: tuple[str, ...] = (
    # One row per (SKU, location): the actor's state (opaque here), its version, a label for
    # the metrics, and when the feeder is to tick it (a gap or a coalesced event falls due).
    """
    CREATE TABLE inventory_positions (
        id INTEGER PRIMARY KEY,
        sku TEXT NOT NULL,
        location_id TEXT NOT NULL,
        state BLOB NOT NULL,
        version INTEGER NOT NULL,
        label TEXT NOT NULL,
        due_at REAL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        UNIQUE (sku, location_id)
    )
    """,
    "CREATE INDEX inventory_positions_due ON inventory_positions (due_at) WHERE due_at IS NOT NULL",
    # The outbox message ids positions applied: a replayed input finds its mark. Ids in
    # commit order, so retention walks the oldest first and stops at the first young one.
    """
    CREATE TABLE inventory_consumed (
        id INTEGER PRIMARY KEY,
        message_id TEXT NOT NULL UNIQUE,
        position_id INTEGER NOT NULL REFERENCES inventory_positions (id),
        applied_at REAL NOT NULL
    )
    """,
    # The read model: one `canonical.availability.Availability` per (SKU, location), as JSON.
    """
    CREATE TABLE inventory_availability (
        sku TEXT NOT NULL,
        location_id TEXT NOT NULL,
        body BLOB NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (sku, location_id)
    ) WITHOUT ROWID
    """,
    # What each snapshot found the deltas had got wrong (an inventory_drift document, JSON).
    """
    CREATE TABLE inventory_drift (
        id INTEGER PRIMARY KEY,
        sku TEXT NOT NULL,
        location_id TEXT NOT NULL,
        recorded_at REAL NOT NULL,
        body BLOB NOT NULL
    )
    """,
    "CREATE INDEX inventory_drift_position ON inventory_drift (sku, location_id, id)",
)


class TooManySkus(GatewayError):
    """More SKUs asked for at once than `MAX_SKUS`."""

    status = 400
    reason = "too-many-skus"
    title = "Too many SKUs"


class PositionRow(Struct, frozen=True, kw_only=True):
    """A position's saved state and version."""

    version: int
    state: bytes


class CommittedRow(Struct, frozen=True, kw_only=True):
    """A committed outbox row of an inventory document."""

    seq: int
    partner_id: str
    body: bytes
    created_at: float


class PositionStep(Struct, frozen=True, kw_only=True):
    """Everything one position step writes, checked against `expected_version`."""

    sku: str
    location_id: str
    expected_version: int
    message_id: str | None  # the consumed mark; None for a tick (the state guards those)
    state: bytes
    label: str
    due_at: float | None
    availability: bytes | None = None  # the read model row (Availability, JSON)
    events: tuple[EventRow, ...] = ()
    drift: bytes | None = None


StepOutcome = Literal["applied", "duplicate", "conflict"]


def apply_step(step: PositionStep, conn: sqlite3.Connection, now: float) -> tuple[StepOutcome, int]:
    """Write one position step whole, or nothing ("duplicate": the mark was there;
    "conflict": the position is at another version); answer the version after it."""
    found = conn.execute(
        "SELECT id, version FROM inventory_positions WHERE sku = ? AND location_id = ?",
        (step.sku, step.location_id),
    ).fetchone()
    position_id, version = (found[0], found[1]) if found else (None, 0)
    if (
        step.message_id is not None
        and conn.execute(
            "SELECT 1 FROM inventory_consumed WHERE message_id = ?", (step.message_id,)
        ).fetchone()
    ):
        return "duplicate", version
    if version != step.expected_version:
        return "conflict", version
    # Nothing was written above: every early answer leaves the transaction untouched.
    if position_id is None:
        position_id = conn.execute(
            """
            INSERT INTO inventory_positions (sku, location_id, state, version, label, due_at,
                                             created_at, updated_at)
            VALUES (?, ?, ?, 1, ?, ?, ?, ?)
            """,
            (step.sku, step.location_id, step.state, step.label, step.due_at, now, now),
        ).lastrowid
    else:
        conn.execute(
            """
            UPDATE inventory_positions SET state = ?, version = version + 1, label = ?,
                                           due_at = ?, updated_at = ?
            WHERE id = ?
            """,
            (step.state, step.label, step.due_at, now, position_id),
        )
    if step.message_id is not None:
        conn.execute(
            "INSERT INTO inventory_consumed (message_id, position_id, applied_at) VALUES (?, ?, ?)",
            (step.message_id, position_id, now),
        )
    if step.availability is not None:
        conn.execute(
            """
            INSERT INTO inventory_availability (sku, location_id, body, updated_at)
            VALUES (?, ?, ?, ?)
            ON CONFLICT (sku, location_id) DO UPDATE SET body = excluded.body,
                                                         updated_at = excluded.updated_at
            """,
            (step.sku, step.location_id, step.availability, now),
        )
    if step.drift is not None:
        conn.execute(
            "INSERT INTO inventory_drift (sku, location_id, recorded_at, body) VALUES (?, ?, ?, ?)",
            (step.sku, step.location_id, now, step.drift),
        )
    queue_events(step.events, conn, now)
    return "applied", version + 1


def save_cursor(position: int, conn: sqlite3.Connection, now: float) -> None:
    """Move the feeder's cursor forward (never back: a late writer cannot undo progress)."""
    conn.execute(
        """
        INSERT INTO workflow_cursors (name, position) VALUES (?, ?)
        ON CONFLICT (name) DO UPDATE SET position = max(position, excluded.position)
        """,
        (CURSOR, position),
    )


_availability = msgspec.json.Decoder(Availability)


async def _fetch(sql: str, params: tuple[object, ...], db: aiosqlite.Connection) -> list[Any]:
    return list(await db.execute_fetchall(sql, params))


class InventoryLedger:
    """The store's inventory calls; reach it as `store.inventory`."""

    def __init__(
        self,
        write: Write,
        read: Read,
        *,
        cache_rows: int = DEFAULT_CACHE_ROWS,
    ) -> None:
        self._write = write
        self._read = read
        # The read model's rows by SKU, kept in step with `apply_step` (availability_cache.py).
        self.cache = AvailabilityCache(cache_rows)

    # The customer API's side

    async def availability(
        self, skus: Sequence[str], location_id: str | None = None
    ) -> list[Availability]:
        """The read model rows of `skus` (at `location_id`, or every location), by SKU then
        location; SKUs no position knows are left out. At most `MAX_SKUS` SKUs."""
        wanted = sorted(set(skus))
        if len(wanted) > MAX_SKUS:
            raise TooManySkus(f"{len(wanted)} SKUs asked for; at most {MAX_SKUS} at once")
        if not wanted:
            return []
        marks = ",".join("?" * len(wanted))
        sql = f"SELECT body FROM inventory_availability WHERE sku IN ({marks})"
        params: tuple[object, ...] = tuple(wanted)
        if location_id is not None:
            sql += " AND location_id = ?"
            params += (location_id,)
        rows = await self._read(partial(_fetch, sql + " ORDER BY sku, location_id", params))
        return [_availability.decode(r[0]) for r in rows]

    async def availability_json(
        self, skus: Sequence[str], location_id: str | None = None
    ) -> list[AvailabilityJson]:
        """`availability` as stored: (sku, location_id, as_of, the row's `Availability` JSON
        ready to send), by SKU then location. SKUs in `cache` are answered from it in the
        event loop; the others are read on the read connection's thread (every location, to
        fill the cache). A synchronous read in the loop was measured and refused: 10 SKUs
        p50 0.13 ms but a worst case past 1 ms on a busy machine, and in the bench no more
        requests/s than the thread (SQLite releases the GIL: the hop runs on the other core)
        with twice the p99."""
        wanted = sorted(set(skus))
        if len(wanted) > MAX_SKUS:
            raise TooManySkus(f"{len(wanted)} SKUs asked for; at most {MAX_SKUS} at once")
        held, missing = self.cache.lookup(wanted)
        loaded: dict[str, tuple[AvailabilityJson, ...]] = {}
        if missing:
            loaded = await self._load(missing)
        found: list[AvailabilityJson] = []
        for sku, rows in held:
            found.extend(loaded[sku] if rows is None else rows)
        if location_id is not None:
            found = [r for r in found if r[1] == location_id]
        return found

    async def _load(self, skus: list[str]) -> dict[str, tuple[AvailabilityJson, ...]]:
        """Every location's row of `skus` from the store, and into the cache."""
        epoch = self.cache.epoch
        marks = ",".join("?" * len(skus))
        sql = f"SELECT sku, location_id, body FROM inventory_availability WHERE sku IN ({marks})"
        rows = await self._read(partial(_fetch, sql, tuple(skus)))
        # Sorted here: SQLite's ORDER BY over an IN list builds a sorter (measured: a quarter
        # of the query's time); the (sku, location_id) key is unique, the bodies never compared.
        by_sku: dict[str, list[AvailabilityJson]] = {sku: [] for sku in skus}
        for sku, location, body in sorted(rows):
            by_sku[sku].append(availability_row(sku, location, bytes(body)))
        loaded = {sku: tuple(found) for sku, found in by_sku.items()}
        self.cache.fill(loaded.items(), epoch)
        return loaded

    # The position actors' side

    async def position(self, sku: str, location_id: str) -> PositionRow | None:
        rows = await self._read(
            partial(
                _fetch,
                "SELECT version, state FROM inventory_positions WHERE sku = ? AND location_id = ?",
                (sku, location_id),
            )
        )
        return PositionRow(version=rows[0][0], state=bytes(rows[0][1])) if rows else None

    async def apply_step(self, step: PositionStep) -> tuple[StepOutcome, int]:
        """Commit one position step (in the next group commit); see `apply_step`. The
        availability cache follows: the new row once committed, the SKU forgotten if the
        outcome is unknown."""
        try:
            outcome, version = await self._write(partial(apply_step, step))
        except BaseException:
            self.cache.forget(step.sku)
            raise
        if outcome == "applied" and step.availability is not None:
            self.cache.applied(step.sku, step.location_id, step.availability)
        return outcome, version

    # The feeder's side

    async def cursor(self) -> int | None:
        rows = await self._read(
            partial(_fetch, "SELECT position FROM workflow_cursors WHERE name = ?", (CURSOR,))
        )
        return int(rows[0][0]) if rows else None

    async def save_cursor(self, position: int) -> None:
        await self._write(partial(save_cursor, position))

    async def outbox_top(self) -> int:
        rows = await self._read(partial(_fetch, "SELECT max(seq) FROM outbox", ()))
        return int(rows[0][0] or 0)

    async def committed(
        self, after_seq: int, limit: int, *, scan: int
    ) -> tuple[list[CommittedRow], int]:
        """Inventory documents among the next `scan` outbox rows after `after_seq`, up to
        `limit`; and the seq read up to (past rows of other documents)."""
        return await self._read(partial(_committed, after_seq, limit, scan))

    async def due(self, now: float, limit: int) -> list[tuple[str, str]]:
        """(SKU, location) of positions whose gap or coalesced event is due."""
        rows = await self._read(
            partial(
                _fetch,
                "SELECT sku, location_id FROM inventory_positions"
                " WHERE due_at IS NOT NULL AND due_at <= ? ORDER BY due_at LIMIT ?",
                (now, limit),
            )
        )
        return [(r[0], r[1]) for r in rows]

    # The operator's side (metrics, tests)

    async def label_counts(self) -> dict[str, int]:
        rows = await self._read(
            partial(_fetch, "SELECT label, count(*) FROM inventory_positions GROUP BY label", ())
        )
        return {r[0]: int(r[1]) for r in rows}

    async def drift(self, sku: str, location_id: str) -> list[bytes]:
        """The drift documents recorded for one position, oldest first."""
        rows = await self._read(
            partial(
                _fetch,
                "SELECT body FROM inventory_drift WHERE sku = ? AND location_id = ? ORDER BY id",
                (sku, location_id),
            )
        )
        return [bytes(r[0]) for r in rows]


async def _committed(
    after_seq: int, limit: int, scan: int, db: aiosqlite.Connection
) -> tuple[list[CommittedRow], int]:
    top = await _fetch("SELECT max(seq) FROM outbox", (), db)
    upper = min(int(top[0][0] or 0), after_seq + scan)
    rows = await _fetch(
        """
        SELECT seq, partner_id, body, created_at FROM outbox
        WHERE seq > ? AND seq <= ? AND document_type IN (?, ?)
        ORDER BY seq LIMIT ?
        """,
        (after_seq, upper, *_INPUT_TYPES, limit),
        db,
    )
    found = [
        CommittedRow(seq=r[0], partner_id=r[1], body=bytes(r[2]), created_at=r[3]) for r in rows
    ]
    reached = found[-1].seq if len(found) == limit else max(upper, after_seq)
    return found, reached
