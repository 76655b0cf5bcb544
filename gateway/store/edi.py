"""X12 in the store: interchanges seen, control-number sequences, files to send, sets sent.

Everything a received X12 file changes commits with the file itself (`finish_x12_file`, the
same transaction as `files.finish_file`): the interchange keys it carried (a replay of one
within the window is refused with TA1 025), the control numbers its acknowledgements use
(from persisted per-partner sequences, never the clock), the acknowledgements rendered with
them (kept as files to send), and what the partner's own 997/999s say of the sets the gateway
sent. Files to send (acks, outbound 850/860 interchanges) are put on the partner's side after
the commit, and stay 'pending' until the put is recorded, so a failed put is retried.

The outbound side records each set sent (GS06, ST02) with its document's message id, so an
inbound 997 is matched to it (`canonical.x12.reconcile`), and an operator lists what is still
unacknowledged. Reach it as `store.edi`; the writes are in gateway/store/edi_writes.py.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from functools import partial
from typing import Any, Literal

import aiosqlite
import msgspec
from msgspec import Struct

from canonical.documents import Document
from canonical.files import FileDecoding, FileRow
from canonical.x12 import InterchangeKey, SentSet, X12Error, X12Profile, X12Reading
from gateway.store.access import Read, Write
from gateway.store.edi_writes import (
    MAX_CONTROL_NUMBER,
    Unwritable,
    finish_x12_file,
    flag_sets,
    key_values,
    mark_put,
    queue_interchange,
    reserve_numbers,
)
from gateway.store.queries import conditions

__all__ = [
    "DEFAULT_REPLAY_WINDOW_S",
    "MAX_CONTROL_NUMBER",
    "MIGRATION",
    "EdiLedger",
    "OutgoingFile",
    "SentRecord",
    "Unwritable",
    "answers_of",
    "finish_x12_file",
    "queue_interchange",
    "read_sent",
    "reserve_numbers",
]


# How long an interchange key is remembered for the replay check (TA1 025): partners resend
# within days; a year-old ISA13 coming round again is a wrapped counter, not a replay.
DEFAULT_REPLAY_WINDOW_S = 90 * 24 * 3600.0

SentStatus = Literal["unacknowledged", "accepted", "rejected"]

# Schema version 6 (gateway/store/schema.py appends it).
MIGRATION: tuple[str, ...] = (
    # Interchange keys accepted, for the replay check; `received_at` bounds the window.
    """
    CREATE TABLE edi_interchanges (
        partner_id         TEXT NOT NULL,
        sender_qualifier   TEXT NOT NULL,
        sender_id          TEXT NOT NULL,
        receiver_qualifier TEXT NOT NULL,
        receiver_id        TEXT NOT NULL,
        control_number     TEXT NOT NULL,
        file_id            INTEGER,
        received_at        REAL NOT NULL,
        PRIMARY KEY (partner_id, sender_qualifier, sender_id, receiver_qualifier, receiver_id,
                     control_number)
    ) WITHOUT ROWID
    """,
    # The next ISA13 / GS06 the gateway writes for a partner.
    """
    CREATE TABLE edi_sequences (
        partner_id TEXT NOT NULL,
        kind       TEXT NOT NULL CHECK (kind IN ('interchange', 'group')),
        next       INTEGER NOT NULL,
        PRIMARY KEY (partner_id, kind)
    ) WITHOUT ROWID
    """,
    # Files to put in a partner's outbound folder: acknowledgements and outbound interchanges.
    """
    CREATE TABLE edi_outgoing (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        partner_id  TEXT NOT NULL,
        channel     TEXT NOT NULL,
        kind        TEXT NOT NULL CHECK (kind IN ('ack', 'interchange')),
        name        TEXT NOT NULL,
        interchange TEXT NOT NULL,
        body        BLOB NOT NULL,
        state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'put')),
        final_name  TEXT,
        created_at  REAL NOT NULL,
        put_at      REAL
    )
    """,
    """
    CREATE INDEX edi_outgoing_pending ON edi_outgoing (partner_id, channel, id)
    WHERE state = 'pending'
    """,
    # Each set the gateway sent, and what the partner's 997/999 said of it.
    """
    CREATE TABLE edi_sent_sets (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        partner_id      TEXT NOT NULL,
        outgoing_id     INTEGER NOT NULL REFERENCES edi_outgoing (id),
        interchange     TEXT NOT NULL,
        group_number    INTEGER NOT NULL,
        transaction_set TEXT NOT NULL,
        set_id          TEXT NOT NULL,
        document_type   TEXT NOT NULL,
        message_id      TEXT,
        correlation_id  TEXT,
        sent_at         REAL NOT NULL,
        status          TEXT NOT NULL DEFAULT 'unacknowledged'
                        CHECK (status IN ('unacknowledged', 'accepted', 'rejected')),
        codes           TEXT NOT NULL DEFAULT '',
        notes           BLOB,
        answered_at     REAL,
        flagged_at      REAL,
        UNIQUE (partner_id, group_number, transaction_set)
    )
    """,
    """
    CREATE INDEX edi_sent_unacknowledged ON edi_sent_sets (sent_at)
    WHERE status = 'unacknowledged'
    """,
    "CREATE INDEX edi_sent_messages ON edi_sent_sets (partner_id, message_id)",
)


class OutgoingFile(Struct, frozen=True, kw_only=True):
    """A file waiting to be put in a partner's outbound folder."""

    id: int
    name: str
    body: bytes
    kind: str


class SentRecord(Struct, frozen=True, kw_only=True):
    """One set the gateway sent, and what became of it."""

    id: int
    partner_id: str
    interchange: str
    group: str
    transaction_set: str
    set_id: str
    document_type: str
    message_id: str | None
    correlation_id: str | None
    sent_at: float
    status: SentStatus
    codes: tuple[str, ...] = ()
    notes: Any = None  # the partner's AK3/AK4, as JSON builtins


def answers_of(reading: X12Reading) -> X12Reading:
    """`reading` without its documents: what `finish_x12_file` needs, cheap to pickle."""
    return X12Reading(
        decoding=FileDecoding(),
        keys=reading.keys,
        acknowledgements=reading.acknowledgements,
        functional_acks=reading.functional_acks,
        profile=reading.profile,
    )


class EdiLedger:
    """X12 state: replay checks, files to send, sets sent and their acknowledgements."""

    def __init__(self, write: Write, read: Read) -> None:
        self._write = write
        self._read = read

    async def seen(
        self, partner_id: str, keys: Sequence[InterchangeKey], *, since: float
    ) -> set[InterchangeKey]:
        """The keys among `keys` accepted from `partner_id` at or after `since`."""
        found: set[InterchangeKey] = set()
        for key in keys:
            rows = await self._read(
                partial(
                    _fetch,
                    """
                    SELECT 1 FROM edi_interchanges
                    WHERE partner_id = ? AND sender_qualifier = ? AND sender_id = ?
                      AND receiver_qualifier = ? AND receiver_id = ? AND control_number = ?
                      AND received_at >= ?
                    """,
                    (partner_id, *key_values(key), since),
                )
            )
            if rows:
                found.add(key)
        return found

    async def finish_file(
        self,
        file_id: int,
        *,
        state: Literal["accepted", "refused"],
        documents: int,
        problems: int,
        reason: str | None,
        rows: Sequence[FileRow],
        answers: X12Reading,
        error_folder: bool,
    ) -> list[str]:
        """See `finish_x12_file`; the caller purges the staged rows (`FileLedger.finish`)."""
        return await self._write(
            partial(
                finish_x12_file,
                file_id,
                state,
                documents,
                problems,
                reason,
                tuple(rows),
                answers_of(answers),
                error_folder,
            )
        )

    async def queue_interchange(
        self,
        partner_id: str,
        channel: str,
        documents: Sequence[tuple[str | None, str | None, Document]],
        profile: X12Profile,
    ) -> tuple[str, list[SentSet]]:
        """See `queue_interchange`; raises `X12Error` for documents X12 cannot carry."""
        queued = await self._write(
            partial(queue_interchange, partner_id, channel, tuple(documents), profile)
        )
        if isinstance(queued, Unwritable):
            raise X12Error(queued.detail)
        return queued

    async def outgoing(self, partner_id: str, channel: str, limit: int) -> list[OutgoingFile]:
        """Files still to put in the partner's outbound folder, oldest first."""
        rows = await self._read(
            partial(
                _fetch,
                """
                SELECT id, name, body, kind FROM edi_outgoing
                WHERE partner_id = ? AND channel = ? AND state = 'pending' ORDER BY id LIMIT ?
                """,
                (partner_id, channel, limit),
            )
        )
        return [OutgoingFile(id=i, name=n, body=bytes(b), kind=k) for i, n, b, k in rows]

    async def put_done(self, outgoing_id: int, final_name: str) -> None:
        """See `mark_put`."""
        await self._write(partial(mark_put, outgoing_id, final_name))

    async def sent(
        self,
        *,
        status: SentStatus | None = None,
        sent_before: float | None = None,
        partner_id: str | None = None,
        limit: int = 1000,
    ) -> list[SentRecord]:
        """Sets sent, oldest first, filtered by status, age and partner."""
        sql, params = _sent_query(status, sent_before, partner_id, limit)
        rows = await self._read(partial(_fetch, sql, params))
        return [_sent(row) for row in rows]

    async def to_flag(self, partner_id: str, overdue_before: float, limit: int) -> list[SentRecord]:
        """A partner's sets not yet raised as exceptions: rejected by its 997, or sent before
        `overdue_before` and still unacknowledged."""
        rows = await self._read(
            partial(
                _fetch,
                f"""
                SELECT {_SENT_COLUMNS} FROM edi_sent_sets
                WHERE partner_id = ? AND flagged_at IS NULL
                  AND (status = 'rejected' OR (status = 'unacknowledged' AND sent_at < ?))
                ORDER BY id LIMIT ?
                """,
                (partner_id, overdue_before, limit),
            )
        )
        return [_sent(row) for row in rows]

    async def flag(self, sent_ids: Sequence[int], rows: Sequence[FileRow]) -> None:
        """See `flag_sets`."""
        await self._write(partial(flag_sets, tuple(sent_ids), tuple(rows)))

    async def unacknowledged_count(self, partner_id: str, sent_before: float) -> int:
        """A partner's sets sent before `sent_before` that no 997/999 has answered yet."""
        rows = await self._read(
            partial(
                _fetch,
                "SELECT count(*) FROM edi_sent_sets "
                "WHERE partner_id = ? AND status = 'unacknowledged' AND sent_at < ?",
                (partner_id, sent_before),
            )
        )
        return int(rows[0][0])


_SENT_COLUMNS = """
    id, partner_id, interchange, group_number, transaction_set, set_id, document_type,
    message_id, correlation_id, sent_at, status, codes, notes
"""


def _sent_query(
    status: SentStatus | None, sent_before: float | None, partner_id: str | None, limit: int
) -> tuple[str, tuple[object, ...]]:
    where, params = conditions(
        ("status = ?", status), ("sent_at < ?", sent_before), ("partner_id = ?", partner_id)
    )
    sql = (
        f"SELECT {_SENT_COLUMNS} FROM edi_sent_sets WHERE {' AND '.join(where) or '1'} "
        "ORDER BY sent_at, id LIMIT ?"
    )
    return sql, (*params, limit)


def read_sent(
    conn: sqlite3.Connection,
    *,
    status: SentStatus | None = None,
    sent_before: float | None = None,
    partner_id: str | None = None,
    limit: int = 1000,
) -> list[SentRecord]:
    """`EdiLedger.sent` on a plain connection (the CLI, with no gateway running)."""
    sql, params = _sent_query(status, sent_before, partner_id, limit)
    return [_sent(row) for row in conn.execute(sql, params).fetchall()]


def _sent(row: Sequence[Any]) -> SentRecord:
    i, p, interchange, g, t, s, d, m, c, at, status, codes, notes = row
    return SentRecord(
        id=i,
        partner_id=p,
        interchange=interchange,
        group=str(g),
        transaction_set=t,
        set_id=s,
        document_type=d,
        message_id=m,
        correlation_id=c,
        sent_at=at,
        status=status,
        codes=tuple(codes.split()),
        notes=msgspec.json.decode(notes) if notes else None,
    )


async def _fetch(sql: str, params: tuple[object, ...], db: aiosqlite.Connection) -> list[Any]:
    async with db.execute(sql, params) as cursor:
        return list(await cursor.fetchall())
