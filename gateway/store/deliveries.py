"""Outbound deliveries in the store: what is due, every attempt, dead letters, replay, endpoints.

Deliveries are inserted with their acceptance (`writer.commit_batch`); this module holds what
happens to them afterwards. Writes are operations that share the writer's group commit; reads
are single statements on the read connection, as in `queries`.
"""

from __future__ import annotations

import sqlite3
from functools import partial
from typing import Any

import aiosqlite
import msgspec

from canonical.delivery import DeliveryAttempt, DeliveryRecord, DeliveryState, Settlement
from gateway.store.access import Read, Write
from gateway.store.queries import conditions, matching

__all__ = ["DeliveryLedger"]


_COLUMNS = """
    d.id, d.partner_id, d.message_id, d.document_type, d.aggregate_key, d.correlation_id,
    d.body, d.state, d.attempts, d.next_attempt_at, d.created_at, d.settled_at, d.reason
"""
# The oldest pending delivery of each aggregate: only it may be attempted, so each aggregate's
# messages reach the partner in the order they were committed. Soonest due first.
_HEADS = f"""
    SELECT {_COLUMNS}
    FROM deliveries AS d
    JOIN (SELECT min(id) AS id FROM deliveries
          WHERE partner_id = ? AND state = 'pending' GROUP BY aggregate_key) AS h
      ON d.id = h.id
    ORDER BY d.next_attempt_at, d.id
    LIMIT ?
"""


class _AttemptView(msgspec.Struct, frozen=True, kw_only=True):
    """One attempt as a dead letter's `detail` lists it (JSON)."""

    attempted_at: float
    status: int | None
    latency_s: float
    error: str | None
    response_head: str


class DeliveryLedger:
    """The store's delivery calls; reach it as `store.deliveries`."""

    def __init__(self, write: Write, read: Read) -> None:
        self._write = write
        self._read = read

    # The delivery actors' side

    async def heads(self, partner_id: str, limit: int) -> list[DeliveryRecord]:
        """Return up to `limit` pending deliveries that are first of their aggregate, due first."""
        return await self._read(partial(_select, _HEADS, (partner_id, limit)))

    async def settle(
        self,
        delivery_id: int,
        attempt: DeliveryAttempt,
        settlement: Settlement,
        *,
        next_attempt_at: float = 0.0,
        reason: str | None = None,
    ) -> None:
        """Record one attempt and what it leaves behind, in one transaction.

        "retry" keeps the delivery pending until `next_attempt_at`; "dead" marks it dead and
        keeps a dead letter (source `delivery:<partner>`) listing every attempt.
        """
        await self._write(
            partial(_settle, delivery_id, attempt, settlement, next_attempt_at, reason)
        )

    async def endpoint_disabled(self, partner_id: str) -> bool:
        """Return True while the partner's endpoint is disabled (it answered 410 Gone)."""
        rows = await self._read(
            partial(
                _fetch,
                "SELECT 1 FROM endpoints WHERE partner_id = ? AND disabled_at IS NOT NULL",
                (partner_id,),
            )
        )
        return bool(rows)

    async def disable_endpoint(self, partner_id: str, reason: str) -> None:
        """Stop deliveries to a partner until `enable_endpoint`; its messages stay pending."""
        await self._write(partial(_disable, partner_id, reason))

    # The operator's side (CLI, admin API)

    async def enable_endpoint(self, partner_id: str) -> bool:
        """Resume a disabled partner's deliveries, backlog due at once; False if not disabled."""
        return await self._write(partial(_enable, partner_id))

    async def replay_delivery(self, delivery_id: int) -> bool:
        """Make a dead delivery pending again, same message id; False if it is not dead."""
        count = await self._write(partial(_replay, "id = ?", (delivery_id,)))
        return bool(count)

    async def replay_deliveries(
        self,
        *,
        partner_id: str | None = None,
        document_type: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> int:
        """Make every dead delivery matching the filters pending again; return how many.

        `since`/`until` (unix seconds, inclusive/exclusive) bound when the delivery died.
        """
        where, params = _filters(partner_id, document_type, since, until)
        return await self._write(partial(_replay, where, params))

    async def dead(
        self,
        *,
        partner_id: str | None = None,
        document_type: str | None = None,
        since: float | None = None,
        until: float | None = None,
        after_id: int = 0,
        limit: int = 100,
    ) -> list[DeliveryRecord]:
        """List dead deliveries in id order; the filters are `replay_deliveries`'s."""
        where, params = _filters(partner_id, document_type, since, until)
        sql = (
            f"SELECT {_COLUMNS} FROM deliveries AS d "
            f"WHERE d.state = 'dead' AND d.id > ? AND {where} ORDER BY d.id LIMIT ?"
        )
        return await self._read(partial(_select, sql, (after_id, *params, limit)))

    # The pulling partner's side (protocols/http/pull.py)

    async def acknowledge(
        self, partner_id: str, *, up_to: int | None = None, message_ids: tuple[str, ...] = ()
    ) -> int:
        """Mark a pulling partner's pending deliveries delivered; return how many.

        `up_to` takes every one with an id at or below it, `message_ids` those named; only
        `partner_id`'s own deliveries are touched.
        """
        return await self._write(partial(_acknowledge, partner_id, up_to, message_ids))

    async def deliveries(
        self,
        *,
        partner_id: str | None = None,
        message_id: str | None = None,
        state: DeliveryState | None = None,
        after_id: int = 0,
        limit: int = 100,
    ) -> list[DeliveryRecord]:
        """List deliveries in id order, filtered by every argument given."""
        where, params = matching(
            after_id,
            {"partner_id": partner_id, "message_id": message_id, "state": state},
            alias="d",
        )
        sql = f"SELECT {_COLUMNS} FROM deliveries AS d WHERE {where}"
        params.append(limit)
        sql += " ORDER BY d.id LIMIT ?"
        return await self._read(partial(_select, sql, tuple(params)))

    async def attempts(self, delivery_id: int) -> list[DeliveryAttempt]:
        """Return every attempt of one delivery, oldest first."""
        rows = await self._read(
            partial(
                _fetch,
                """
                SELECT attempted_at, status, latency_s, error, response_head
                FROM delivery_attempts WHERE delivery_id = ? ORDER BY id
                """,
                (delivery_id,),
            )
        )
        return [
            DeliveryAttempt(
                attempted_at=r[0], status=r[1], latency_s=r[2], error=r[3], response_head=r[4]
            )
            for r in rows
        ]

    async def backlog(self) -> dict[str, int]:
        """Return the pending deliveries per partner (the retry queue's depth)."""
        rows = await self._read(
            partial(
                _fetch,
                "SELECT partner_id, count(*) FROM deliveries WHERE state = 'pending' "
                "GROUP BY partner_id",
                (),
            )
        )
        return {partner: int(count) for partner, count in rows}


# Reads


async def _fetch(sql: str, params: tuple[object, ...], db: aiosqlite.Connection) -> list[Any]:
    return list(await db.execute_fetchall(sql, params))


async def _select(
    sql: str, params: tuple[object, ...], db: aiosqlite.Connection
) -> list[DeliveryRecord]:
    return [
        DeliveryRecord(
            id=r[0],
            partner_id=r[1],
            message_id=r[2],
            document_type=r[3],
            aggregate_key=r[4],
            correlation_id=r[5],
            body=bytes(r[6]),
            state=r[7],
            attempts=r[8],
            next_attempt_at=r[9],
            created_at=r[10],
            settled_at=r[11],
            reason=r[12],
        )
        for r in await db.execute_fetchall(sql, params)
    ]


def _filters(
    partner_id: str | None, document_type: str | None, since: float | None, until: float | None
) -> tuple[str, tuple[object, ...]]:
    where, params = conditions(
        ("partner_id = ?", partner_id),
        ("document_type = ?", document_type),
        ("settled_at >= ?", since),
        ("settled_at < ?", until),
    )
    return " AND ".join(where) or "1", tuple(params)


# Writes: run inside the writer's group commit with (connection, batch timestamp).


def _settle(
    delivery_id: int,
    attempt: DeliveryAttempt,
    settlement: Settlement,
    next_attempt_at: float,
    reason: str | None,
    conn: sqlite3.Connection,
    now: float,
) -> None:
    conn.execute(
        """
        INSERT INTO delivery_attempts (delivery_id, attempted_at, status, latency_s, error,
                                       response_head)
        VALUES (?, ?, ?, ?, ?, ?)
        """,
        (
            delivery_id,
            attempt.attempted_at,
            attempt.status,
            attempt.latency_s,
            attempt.error,
            attempt.response_head,
        ),
    )
    if settlement == "delivered":
        conn.execute(
            """
            UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, settled_at = ?,
                                  reason = NULL
            WHERE id = ? AND state = 'pending'
            """,
            (now, delivery_id),
        )
    elif settlement == "retry":
        conn.execute(
            """
            UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = ?, reason = ?
            WHERE id = ? AND state = 'pending'
            """,
            (next_attempt_at, reason, delivery_id),
        )
    else:
        _bury(conn, delivery_id, reason or "gave up", now)


def _bury(conn: sqlite3.Connection, delivery_id: int, reason: str, now: float) -> None:
    """Mark a pending delivery dead and keep a dead letter listing every attempt."""
    found = conn.execute(
        "SELECT partner_id, message_id, body FROM deliveries WHERE id = ? AND state = 'pending'",
        (delivery_id,),
    ).fetchone()
    if found is None:
        return
    partner_id, message_id, body = found
    attempts = [
        _AttemptView(
            attempted_at=r[0],
            status=r[1],
            latency_s=r[2],
            error=r[3],
            response_head=bytes(r[4]).decode("utf-8", "replace"),
        )
        for r in conn.execute(
            """
            SELECT attempted_at, status, latency_s, error, response_head
            FROM delivery_attempts WHERE delivery_id = ? ORDER BY id
            """,
            (delivery_id,),
        )
    ]
    detail = msgspec.json.encode({"delivery_id": delivery_id, "attempts": attempts}).decode()
    conn.execute(
        """
        INSERT INTO dead_letters (source, partner_id, message_id, reason, detail, payload,
                                  created_at)
        VALUES (?, ?, ?, ?, ?, ?, ?)
        """,
        (f"delivery:{partner_id}", partner_id, message_id, reason, detail, body, now),
    )
    conn.execute(
        """
        UPDATE deliveries SET state = 'dead', attempts = attempts + 1, settled_at = ?, reason = ?
        WHERE id = ?
        """,
        (now, reason, delivery_id),
    )


def _disable(partner_id: str, reason: str, conn: sqlite3.Connection, now: float) -> None:
    conn.execute(
        """
        INSERT INTO endpoints (partner_id, disabled_at, reason) VALUES (?, ?, ?)
        ON CONFLICT (partner_id) DO UPDATE SET disabled_at = excluded.disabled_at,
                                               reason = excluded.reason
        """,
        (partner_id, now, reason),
    )


def _enable(partner_id: str, conn: sqlite3.Connection, now: float) -> bool:
    cursor = conn.execute(
        """
        UPDATE endpoints SET disabled_at = NULL, reason = NULL
        WHERE partner_id = ? AND disabled_at IS NOT NULL
        """,
        (partner_id,),
    )
    if not cursor.rowcount:
        return False
    # The backlog waited for the operator, not for its retry delays: it is due now.
    conn.execute(
        "UPDATE deliveries SET next_attempt_at = ? WHERE partner_id = ? AND state = 'pending'",
        (now, partner_id),
    )
    return True


def _replay(where: str, params: tuple[object, ...], conn: sqlite3.Connection, now: float) -> int:
    # The same row, so the same message id: the partner dedups a replay it had already seen.
    replayed = conn.execute(
        f"""
        UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = ?,
                              settled_at = NULL, reason = NULL
        WHERE state = 'dead' AND {where}
        RETURNING partner_id, message_id
        """,
        (now, *params),
    ).fetchall()
    # Their dead letters go with them: a pending delivery is no dead letter any more.
    conn.executemany(
        "DELETE FROM dead_letters WHERE source = 'delivery:' || ?1 AND message_id = ?2",
        replayed,
    )
    return len(replayed)


def _acknowledge(
    partner_id: str,
    up_to: int | None,
    message_ids: tuple[str, ...],
    conn: sqlite3.Connection,
    now: float,
) -> int:
    update = """
        UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, settled_at = ?,
                              reason = NULL
        WHERE partner_id = ? AND state = 'pending' AND
    """
    count = 0
    if up_to is not None:
        count += conn.execute(update + " id <= ?", (now, partner_id, up_to)).rowcount
    for message_id in message_ids:
        count += conn.execute(update + " message_id = ?", (now, partner_id, message_id)).rowcount
    return count
