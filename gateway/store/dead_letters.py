"""Dead letters for the operator: one table for every source, listed, counted and put back.

Every part of the gateway that gives up on a message keeps it in `dead_letters` with its source
and reason (`Store.dead_letter`, the couriers' `_bury`, the relay's `mark_dead`). The source
names the step that gave up, and its kind (the text before ":") what a replay means:

- `delivery:<partner>`: a courier gave up; the delivery row goes back to pending.
- `relay`: the broker could not route the outbox row (312 NO_ROUTE) or AMQP cannot carry it;
  the outbox row goes back to pending, and the relay publishes it on its next pass.
- `amqp:<queue>` (an ERP message refused), `intake:<partner>` (a webhook the intake crashed
  on): nothing in the store to put back; the gateway takes the message through its intake
  again (gateway/deadletters.py) and then `discard`s or `renew`s the dead letter here.
- `actor:<name>`: not replayable (no actor runs in the runtime yet).

Putting a row back removes its dead letters in the same transaction, those of earlier deaths of
the same message too, so nothing stale is left listed. Reads are single statements on the read
connection; writes share the writer's group commit (pickled to the writer process, so every
write here is a module-level function).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from functools import partial
from typing import Any

import aiosqlite
import msgspec

from gateway.store.access import Read, Write
from gateway.store.queries import conditions
from gateway.store.records import DeadLetter

__all__ = ["PUT_BACK_KINDS", "DeadLetterBook", "DeadLetterHead", "PutBack", "kind_of"]


# Kinds whose message still has its row in the store, to be made pending again.
PUT_BACK_KINDS = frozenset({"delivery", "relay"})


def kind_of(source: str) -> str:
    """The kind of a dead letter's source: "delivery" for "delivery:acme", "relay" for "relay"."""
    return source.partition(":")[0]


class DeadLetterHead(msgspec.Struct, frozen=True, kw_only=True):
    """A dead letter without its body and detail: one line of a listing."""

    id: int
    source: str
    partner_id: str | None
    message_id: str | None
    # From the outbox or delivery row the dead letter stands for; None for other kinds.
    document_type: str | None
    reason: str
    created_at: float


class PutBack(msgspec.Struct, frozen=True, kw_only=True):
    """What `put_back` did: dead letters whose row is pending again, and those it could not."""

    replayed: tuple[int, ...] = ()
    # (dead letter id, why): the row is gone from the store (purged), or not of a put-back kind.
    refused: tuple[tuple[int, str], ...] = ()


# The document type of the row a dead letter stands for, where there is one.
_DOCUMENT_TYPE = """
    CASE
      WHEN dl.source = 'relay' THEN
        (SELECT o.document_type FROM outbox AS o WHERE o.message_id = dl.message_id)
      WHEN dl.source LIKE 'delivery:%' THEN
        (SELECT d.document_type FROM deliveries AS d
         WHERE d.partner_id = dl.partner_id AND d.message_id = dl.message_id)
    END
"""
_KIND = (
    "CASE WHEN instr(source, ':') THEN substr(source, 1, instr(source, ':') - 1) ELSE source END"
)


class DeadLetterBook:
    """The store's dead-letter calls for the operator; reach it as `store.dead_letter_book`."""

    def __init__(self, write: Write, read: Read) -> None:
        self._write = write
        self._read = read

    async def heads(
        self,
        *,
        source: str | None = None,
        partner_id: str | None = None,
        document_type: str | None = None,
        since: float | None = None,
        until: float | None = None,
        after_id: int = 0,
        limit: int = 100,
    ) -> list[DeadLetterHead]:
        """List dead letters in id order after `after_id`, every filter given matching.

        `source` matches a source exactly or by kind ("delivery" matches "delivery:acme");
        `since`/`until` (unix seconds, inclusive/exclusive) bound when it died.
        """
        where, params = conditions(
            ("dl.id > ?", after_id),
            ("dl.partner_id = ?", partner_id),
            ("dl.created_at >= ?", since),
            ("dl.created_at < ?", until),
        )
        if source is not None:
            where.append("(dl.source = ? OR substr(dl.source, 1, ?) = ?)")
            params += [source, len(source) + 1, source + ":"]
        outer = "1"
        if document_type is not None:
            outer = "document_type = ?"
            params.append(document_type)
        params.append(limit)
        sql = f"""
            SELECT * FROM (
                SELECT dl.id, dl.source, dl.partner_id, dl.message_id, {_DOCUMENT_TYPE}
                       AS document_type, dl.reason, dl.created_at
                FROM dead_letters AS dl WHERE {" AND ".join(where)}
            ) WHERE {outer} ORDER BY id LIMIT ?
        """
        rows = await self._read(partial(_fetch, sql, tuple(params)))
        return [
            DeadLetterHead(
                id=r[0],
                source=r[1],
                partner_id=r[2],
                message_id=r[3],
                document_type=r[4],
                reason=r[5],
                created_at=r[6],
            )
            for r in rows
        ]

    async def get(self, dead_letter_id: int) -> tuple[DeadLetter, str | None] | None:
        """Return one dead letter whole, with its document type (or None); None if there is none."""
        rows = await self._read(
            partial(
                _fetch,
                f"""
                SELECT dl.id, dl.source, dl.partner_id, dl.message_id, dl.reason, dl.detail,
                       dl.payload, dl.created_at, {_DOCUMENT_TYPE}
                FROM dead_letters AS dl WHERE dl.id = ?
                """,
                (dead_letter_id,),
            )
        )
        if not rows:
            return None
        r = rows[0]
        letter = DeadLetter(
            id=r[0],
            source=r[1],
            partner_id=r[2],
            message_id=r[3],
            reason=r[4],
            detail=r[5],
            payload=bytes(r[6]),
            created_at=r[7],
        )
        return letter, r[8]

    async def counts(self) -> dict[str, int]:
        """Return how many dead letters the store keeps, by source kind."""
        rows = await self._read(
            partial(_fetch, f"SELECT {_KIND} AS kind, count(*) FROM dead_letters GROUP BY kind", ())
        )
        return {kind: int(count) for kind, count in rows}

    async def put_back(self, dead_letter_ids: Sequence[int]) -> PutBack:
        """Make the rows of these delivery and relay dead letters pending again, in one commit.

        Each one's dead letters are removed with it. A dead letter whose row had already left
        the dead state (replayed before this rule held) is removed and counted as replayed.
        """
        return await self._write(partial(_put_back, tuple(dead_letter_ids)))

    async def discard(self, dead_letter_id: int) -> None:
        """Remove a dead letter whose message its intake has taken again."""
        await self._write(partial(_discard, dead_letter_id))

    async def renew(self, dead_letter_id: int, reason: str, detail: str) -> None:
        """Keep a dead letter its intake refused again, with the new reason, dead as of now."""
        await self._write(partial(_renew, dead_letter_id, reason, detail))


async def _fetch(sql: str, params: tuple[object, ...], db: aiosqlite.Connection) -> list[Any]:
    return list(await db.execute_fetchall(sql, params))


# Writes: run inside the writer's group commit with (connection, batch timestamp).


def _put_back(ids: tuple[int, ...], conn: sqlite3.Connection, now: float) -> PutBack:
    replayed: list[int] = []
    refused: list[tuple[int, str]] = []
    for dead_letter_id in ids:
        found = conn.execute(
            "SELECT source, partner_id, message_id FROM dead_letters WHERE id = ?",
            (dead_letter_id,),
        ).fetchone()
        if found is None:
            continue  # put back meanwhile, by another replay
        source, partner_id, message_id = found
        kind = kind_of(source)
        if kind == "delivery":
            state = _pending_again_delivery(conn, partner_id, message_id, now)
        elif kind == "relay":
            state = _pending_again_outbox(conn, message_id)
        else:
            refused.append((dead_letter_id, f"a {kind!r} dead letter has no row to put back"))
            continue
        if state is None:
            refused.append((dead_letter_id, f"its {kind} row is no longer in the store"))
            continue
        conn.execute(
            "DELETE FROM dead_letters WHERE source = ? AND message_id IS ?", (source, message_id)
        )
        replayed.append(dead_letter_id)
    return PutBack(replayed=tuple(replayed), refused=tuple(refused))


def _pending_again_delivery(
    conn: sqlite3.Connection, partner_id: str, message_id: str, now: float
) -> str | None:
    """Make a dead delivery pending, due now; return its state before, None if it is gone."""
    # The same row, so the same message id: the partner dedups a replay it had already seen.
    found = conn.execute(
        "SELECT state FROM deliveries WHERE partner_id = ? AND message_id = ?",
        (partner_id, message_id),
    ).fetchone()
    if found is not None and found[0] == "dead":
        conn.execute(
            """
            UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = ?,
                                  settled_at = NULL, reason = NULL
            WHERE partner_id = ? AND message_id = ? AND state = 'dead'
            """,
            (now, partner_id, message_id),
        )
    return None if found is None else str(found[0])


def _pending_again_outbox(conn: sqlite3.Connection, message_id: str) -> str | None:
    """Make a dead outbox row pending; return its state before, None if it is gone."""
    found = conn.execute("SELECT state FROM outbox WHERE message_id = ?", (message_id,)).fetchone()
    if found is not None and found[0] == "dead":
        # The relay finds it on its next look from the start of the outbox: its seq is old.
        conn.execute(
            "UPDATE outbox SET state = 'pending', reason = NULL WHERE message_id = ?",
            (message_id,),
        )
    return None if found is None else str(found[0])


def _discard(dead_letter_id: int, conn: sqlite3.Connection, now: float) -> None:
    conn.execute("DELETE FROM dead_letters WHERE id = ?", (dead_letter_id,))


def _renew(
    dead_letter_id: int, reason: str, detail: str, conn: sqlite3.Connection, now: float
) -> None:
    conn.execute(
        "UPDATE dead_letters SET reason = ?, detail = ?, created_at = ? WHERE id = ?",
        (reason, detail, now, dead_letter_id),
    )
