"""Workflow reads: single statements on the store's read connection, never behind the writer.

Each function takes the read connection last, so `WorkflowLedger` binds it with
`functools.partial` and hands it to the store's reader. The feeders read committed inputs by
cursor; the threads their own row; the timer service due timers (gateway/store/timers.py); the
operator the trace and the gauges.
"""

from __future__ import annotations

from typing import Any

import aiosqlite
from msgspec import Struct

__all__ = [
    "THREAD_COLUMNS",
    "CommittedInput",
    "DeliverySettled",
    "ThreadRow",
    "committed_inputs",
    "fetch",
    "settled_deliveries",
    "threads",
]

THREAD_COLUMNS = """
    id, supplier, po_number, buyer, correlation_id, status, state, version, created_at, updated_at
"""


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


async def fetch(sql: str, params: tuple[object, ...], db: aiosqlite.Connection) -> list[Any]:
    return list(await db.execute_fetchall(sql, params))


async def threads(
    sql: str, params: tuple[object, ...], db: aiosqlite.Connection
) -> list[ThreadRow]:
    """The threads `sql` selects (its columns `THREAD_COLUMNS`)."""
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


async def committed_inputs(
    after_seq: int,
    limit: int,
    scan: int,
    erp_source: str,
    order_types: tuple[str, ...],
    partner_types: tuple[str, ...],
    db: aiosqlite.Connection,
) -> tuple[list[CommittedInput], int]:
    """Outbox rows a thread may take (the ERP's orders, partners' other documents) among the
    next `scan` rows after `after_seq`, up to `limit`; and the seq read up to.

    Rows no thread takes are passed over by the second value, so a feeder's cursor moves
    through a stream of other documents instead of scanning them again on every pass.
    """
    top = await fetch("SELECT max(seq) FROM outbox", (), db)
    upper = min(int(top[0][0] or 0), after_seq + scan)
    order_marks = ",".join("?" * len(order_types))
    partner_marks = ",".join("?" * len(partner_types))
    rows = await fetch(
        f"""
        SELECT seq, message_id, partner_id, document_type, body, created_at
        FROM outbox
        WHERE seq > ? AND seq <= ? AND (
            (document_type IN ({order_marks}) AND partner_id = ?)
            OR document_type IN ({partner_marks}))
        ORDER BY seq LIMIT ?
        """,
        (after_seq, upper, *order_types, erp_source, *partner_types, limit),
        db,
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
    after_attempt: int,
    limit: int,
    document_types: tuple[str, ...],
    scan: int,
    db: aiosqlite.Connection,
) -> tuple[list[DeliverySettled], int]:
    """Deliveries of `document_types` now delivered or dead with an attempt among the next
    `scan` after `after_attempt`, each once, by its last attempt; and the attempt id read up to.

    A delivery still pending is left out, and its attempts with it: it is listed once it
    settles, by the attempt that settled it (a replayed dead delivery settles again).
    """
    top = await fetch("SELECT max(id) FROM delivery_attempts", (), db)
    upper = min(int(top[0][0] or 0), after_attempt + scan)
    marks = ",".join("?" * len(document_types))
    rows = await fetch(
        f"""
        SELECT max(a.id) AS last, d.id, d.partner_id, d.message_id, d.document_type,
               d.state, d.body, d.settled_at, d.reason
        FROM delivery_attempts AS a JOIN deliveries AS d ON d.id = a.delivery_id
        WHERE a.id > ? AND a.id <= ? AND d.document_type IN ({marks})
          AND d.state IN ('delivered', 'dead')
        GROUP BY d.id ORDER BY last LIMIT ?
        """,
        (after_attempt, upper, *document_types, limit),
        db,
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
