"""Customer orders' status read model: one row per sales order, kept from what the ERP says.

`record_order` writes the row when the customer API accepts an order (state `buffered`: in
the outbox or the broker, the ERP has not confirmed it); `apply_status` moves it on from the
`order_status` documents the ERP and logistics sources publish (gateway/customer_api.py feeds
them from the committed outbox). Reads run on the read connection and never wait on a
downstream system: a status is whatever was last learned, with when.
"""

from __future__ import annotations

import sqlite3
from functools import partial
from typing import Any

import aiosqlite
import msgspec
from msgspec import Struct

from canonical.sales import ORDER_STATES
from gateway.store.access import Read, Write

__all__ = [
    "MIGRATION",
    "TERMINAL_STATES",
    "Milestone",
    "OrderLedger",
    "OrderRow",
    "apply_status",
    "record_order",
]


# Final states: shown over any other, whatever the times say (a late "shipped" report does
# not reopen a cancelled order).
TERMINAL_STATES = frozenset({"delivered", "cancelled"})
# States the gateway sets itself, before any source said anything.
GATEWAY_STATES = frozenset({"received", "buffered"})
# Milestones kept per order; the oldest go first (an order with hundreds is a loop upstream).
MAX_MILESTONES = 50

# Schema version 9 (issue 20; gateway/store/schema.py appends it after inventory's 8).
MIGRATION: tuple[str, ...] = (
    # `changed_at`: the source's time of the status shown (the answer's `as_of`);
    # `heard_at`: when the gateway last heard from a source about it (for `stale`).
    """
    CREATE TABLE customer_orders (
        order_id        TEXT PRIMARY KEY,
        customer_id     TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        message_id      TEXT NOT NULL,
        status          TEXT NOT NULL,
        milestones      BLOB NOT NULL,
        created_at      REAL NOT NULL,
        changed_at      REAL NOT NULL,
        heard_at        REAL NOT NULL
    ) WITHOUT ROWID
    """,
)


class Milestone(Struct, frozen=True, kw_only=True):
    """One status the order went through, with the source's time and its carrier detail."""

    status: str
    at: float
    milestone: str | None = None
    carrier_scac: str | None = None
    tracking_number: str | None = None


class OrderRow(Struct, frozen=True, kw_only=True):
    """An order's status as last learned."""

    order_id: str
    customer_id: str
    message_id: str
    status: str
    milestones: tuple[Milestone, ...]
    created_at: float
    changed_at: float
    heard_at: float


_MILESTONES = msgspec.json.Decoder(tuple[Milestone, ...])
_ENCODE = msgspec.json.Encoder().encode
# The states in the order an order normally goes through them.
_STEPS: dict[str, int] = {state: i for i, state in enumerate(ORDER_STATES)}


def record_order(
    order_id: str,
    customer_id: str,
    idempotency_key: str,
    message_id: str,
    submitted_at: float,
    conn: sqlite3.Connection,
    now: float,
) -> bool:
    """Write a new order's row, `buffered`; True if new (a replay finds it and changes nothing)."""
    first = Milestone(status="buffered", at=submitted_at)
    cursor = conn.execute(
        """
        INSERT OR IGNORE INTO customer_orders (order_id, customer_id, idempotency_key,
            message_id, status, milestones, created_at, changed_at, heard_at)
        VALUES (?, ?, ?, ?, 'buffered', ?, ?, ?, ?)
        """,
        (
            order_id,
            customer_id,
            idempotency_key,
            message_id,
            msgspec.json.encode((first,)),
            now,
            submitted_at,
            now,
        ),
    )
    return cursor.rowcount == 1


def apply_status(milestone: Milestone, order_id: str, conn: sqlite3.Connection, now: float) -> str:
    """Apply one status report; return what happened: applied, repeated, older, unknown.

    The status shown is the report that ranks highest (`_rank`): a final state over any other,
    then the source's latest time; the gateway's own `buffered` gives way to any report,
    whatever the clocks of the two systems say. So the reports of an order may arrive in any
    order, and twice: the row ends the same. A lower report is kept as a milestone. Any report
    counts as hearing from the source (`heard_at`), which is what `stale` is judged by.
    """
    row = conn.execute(
        "SELECT status, milestones, changed_at FROM customer_orders WHERE order_id = ?",
        (order_id,),
    ).fetchone()
    if row is None:
        return "unknown"
    status, raw, changed_at = row[0], _MILESTONES.decode(row[1]), row[2]
    conn.execute("UPDATE customer_orders SET heard_at = ? WHERE order_id = ?", (now, order_id))
    if milestone in raw:
        return "repeated"
    milestones = sorted((*raw, milestone), key=_order)[-MAX_MILESTONES:]
    shown = Milestone(status=status, at=changed_at)
    moves = _rank(milestone) > _rank(shown)
    conn.execute(
        "UPDATE customer_orders SET milestones = ?, status = ?, changed_at = ? WHERE order_id = ?",
        (
            msgspec.json.encode(tuple(milestones)),
            milestone.status if moves else status,
            milestone.at if moves else changed_at,
            order_id,
        ),
    )
    return "applied" if moves else "older"


def _rank(m: Milestone) -> tuple[bool, bool, float, int]:
    """How a report ranks for the status shown: a source's over the gateway's own, a final
    state over any other, then the later, then the further along (a tie in time)."""
    return (
        m.status not in GATEWAY_STATES,
        m.status in TERMINAL_STATES,
        m.at,
        _STEPS.get(m.status, -1),
    )


def _order(m: Milestone) -> tuple[bool, float, int, bytes]:
    """The milestones' order: the gateway's own first, then the sources' in their time order
    (ties by step, then by content, so any arrival order gives the same list)."""
    return (m.status not in GATEWAY_STATES, m.at, _STEPS.get(m.status, -1), _ENCODE(m))


class OrderLedger:
    """The customer orders' status rows: record, move on, read (scoped to the account)."""

    def __init__(self, write: Write, read: Read) -> None:
        self._write = write
        self._read = read

    async def record(
        self,
        *,
        order_id: str,
        customer_id: str,
        idempotency_key: str,
        message_id: str,
        submitted_at: float,
    ) -> bool:
        """See `record_order`."""
        return await self._write(
            partial(record_order, order_id, customer_id, idempotency_key, message_id, submitted_at)
        )

    async def apply(self, order_id: str, milestone: Milestone) -> str:
        """See `apply_status`."""
        return await self._write(partial(apply_status, milestone, order_id))

    async def order(self, order_id: str, customer_id: str) -> OrderRow | None:
        """The order's row if it is `customer_id`'s; None for another account's or no order."""
        rows = await self._read(
            partial(
                _fetch,
                """
                SELECT order_id, customer_id, message_id, status, milestones, created_at,
                       changed_at, heard_at
                FROM customer_orders WHERE order_id = ? AND customer_id = ?
                """,
                (order_id, customer_id),
            )
        )
        if not rows:
            return None
        r = rows[0]
        return OrderRow(
            order_id=r[0],
            customer_id=r[1],
            message_id=r[2],
            status=r[3],
            milestones=_MILESTONES.decode(r[4]),
            created_at=r[5],
            changed_at=r[6],
            heard_at=r[7],
        )


async def _fetch(sql: str, params: tuple[object, ...], db: aiosqlite.Connection) -> list[Any]:
    async with db.execute(sql, params) as cursor:
        return list(await cursor.fetchall())
