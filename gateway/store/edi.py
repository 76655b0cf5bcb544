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
unacknowledged. Reach it as `store.edi`.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, Literal, Protocol, TypeVar

import aiosqlite
import msgspec
from msgspec import Struct

from canonical.documents import Document
from canonical.files import FileDecoding
from canonical.x12 import (
    ControlNumbers,
    GroupOutcome,
    InterchangeKey,
    PendingAck,
    SentSet,
    X12Error,
    X12Profile,
    X12Reading,
    encode_interchange,
    reconcile,
    render_acknowledgements,
)
from gateway.store.files import _ROW_COLUMNS, FileRow, finish_file

__all__ = [
    "DEFAULT_REPLAY_WINDOW_S",
    "MIGRATION",
    "EdiLedger",
    "OutgoingFile",
    "SentRecord",
    "Unwritable",
    "finish_x12_file",
    "purge_edi",
    "queue_interchange",
    "read_sent",
    "reserve_numbers",
]

T = TypeVar("T")

# How long an interchange key is remembered for the replay check (TA1 025): partners resend
# within days; a year-old ISA13 coming round again is a wrapped counter, not a replay.
DEFAULT_REPLAY_WINDOW_S = 90 * 24 * 3600.0
# ISA13 and GS06 are at most nine digits; a sequence wraps to 1 past it.
MAX_CONTROL_NUMBER = 999_999_999

SequenceKind = Literal["interchange", "group"]
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


class Unwritable(Struct, frozen=True, kw_only=True):
    """Documents X12 cannot carry (a value with a delimiter, a type with no set): why."""

    detail: str


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


# Writes: bound with functools.partial and pickled to the writer process.


def reserve_numbers(
    partner_id: str, kind: SequenceKind, count: int, conn: sqlite3.Connection
) -> int:
    """Take `count` consecutive numbers of a partner's sequence; returns the first.

    A run that would pass 999,999,999 starts again at 1 (the numbers are nine digits).
    """
    found = conn.execute(
        "SELECT next FROM edi_sequences WHERE partner_id = ? AND kind = ?", (partner_id, kind)
    ).fetchone()
    first = int(found[0]) if found else 1
    if first + count - 1 > MAX_CONTROL_NUMBER:
        first = 1
    conn.execute(
        "INSERT INTO edi_sequences (partner_id, kind, next) VALUES (?, ?, ?) "
        "ON CONFLICT (partner_id, kind) DO UPDATE SET next = excluded.next",
        (partner_id, kind, first + count),
    )
    return first


def finish_x12_file(
    file_id: int,
    state: Literal["accepted", "refused"],
    documents: int,
    problems: int,
    reason: str | None,
    rows: Sequence[FileRow],
    answers: X12Reading,
    error_folder: bool,
    conn: sqlite3.Connection,
    now: float,
) -> list[str]:
    """Commit an X12 file (`files.finish_file`) with what it changes here, in one transaction.

    `answers` is the file's reading without its documents: the interchange keys to remember
    (when accepted), the acknowledgements owed (rendered now with reserved numbers, kept as
    files to send), and the 997/999s it carried (applied to the sets the gateway sent).
    `error_folder` sends an accepted file with a rejected set to the error folder. Returns
    the names of the acknowledgement files queued.
    """
    finish_file(file_id, state, documents, problems, reason, rows, conn, now)
    partner_id, channel = conn.execute(
        "SELECT partner_id, channel FROM received_files WHERE id = ?", (file_id,)
    ).fetchone()
    if error_folder:
        conn.execute("UPDATE received_files SET folder = 'error' WHERE id = ?", (file_id,))
    if state == "accepted":
        conn.executemany(
            """
            INSERT INTO edi_interchanges (partner_id, sender_qualifier, sender_id,
                receiver_qualifier, receiver_id, control_number, file_id, received_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT DO UPDATE SET file_id = excluded.file_id,
                                      received_at = excluded.received_at
            """,
            [(partner_id, *_key_values(key), file_id, now) for key in answers.keys],
        )
    for outcome in answers.functional_acks:
        _apply_answer(partner_id, outcome, conn, now)
    names: list[str] = []
    interchanges, groups = answers.control_numbers_needed
    if interchanges:
        numbers = ControlNumbers(
            interchange=reserve_numbers(partner_id, "interchange", interchanges, conn),
            group=reserve_numbers(partner_id, "group", max(groups, 1), conn),
        )
        at = dt.datetime.fromtimestamp(now, dt.UTC)
        try:
            bodies = render_acknowledgements(answers, numbers, at=at)
        except X12Error:
            # Ids mirrored from the inbound envelope that do not fit ours: the file is still
            # committed (its documents are sound); the partner gets no ack, and asks.
            return names
        owed = zip(answers.acknowledgements, bodies, strict=True)
        for offset, (pending, body) in enumerate(owed):
            number = f"{numbers.interchange + offset:09d}"
            name = f"{_ack_kind(pending)}_{number}.x12"
            _queue(partner_id, channel, "ack", name, number, body, conn, now)
            names.append(name)
    return names


def _ack_kind(pending: PendingAck) -> str:
    return pending.kind if pending.groups else "TA1"


def queue_interchange(
    partner_id: str,
    channel: str,
    documents: Sequence[tuple[str | None, str | None, Document]],
    profile: X12Profile,
    conn: sqlite3.Connection,
    now: float,
) -> tuple[str, list[SentSet]] | Unwritable:
    """Write `documents` (message id, correlation id, document) as one interchange to send.

    Control numbers come from the partner's sequences in this transaction; each set sent is
    recorded for the partner's 997. Returns the file's name and the sets. Documents whose
    message ids were queued before are not queued again (a delivery retried after its
    settlement was lost): the earlier file's name and sets are returned. A document X12
    cannot carry is `Unwritable` (nothing kept).
    """
    earlier = _queued_before(partner_id, [message_id for message_id, _, _ in documents], conn)
    if earlier is not None:
        return earlier
    # An X12Error escaping a write would stop the writer: it comes back as a value, and the
    # numbers reserved before it are given back with the savepoint.
    conn.execute("SAVEPOINT queue_interchange")
    try:
        queued = _queue_interchange(partner_id, channel, documents, profile, conn, now)
    except X12Error as exc:
        conn.execute("ROLLBACK TO queue_interchange")
        return Unwritable(detail=exc.detail)
    finally:
        conn.execute("RELEASE queue_interchange")
    return queued


def _queue_interchange(
    partner_id: str,
    channel: str,
    documents: Sequence[tuple[str | None, str | None, Document]],
    profile: X12Profile,
    conn: sqlite3.Connection,
    now: float,
) -> tuple[str, list[SentSet]]:
    groups = len({type(document) for _, _, document in documents})
    numbers = ControlNumbers(
        interchange=reserve_numbers(partner_id, "interchange", 1, conn),
        group=reserve_numbers(partner_id, "group", max(groups, 1), conn),
    )
    outbound = encode_interchange(
        [document for _, _, document in documents],
        profile,
        numbers,
        at=dt.datetime.fromtimestamp(now, dt.UTC),
    )
    first_type = outbound.sets[0].set_id if outbound.sets else "x12"
    name = f"{first_type}_{outbound.interchange}.x12"
    outgoing_id = _queue(
        partner_id, channel, "interchange", name, outbound.interchange, outbound.data, conn, now
    )
    conn.executemany(
        """
        INSERT INTO edi_sent_sets (partner_id, outgoing_id, interchange, group_number,
            transaction_set, set_id, document_type, message_id, correlation_id, sent_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        [
            (
                partner_id,
                outgoing_id,
                outbound.interchange,
                int(sent.group),
                sent.transaction_set,
                sent.set_id,
                sent.document_type,
                message_id,
                correlation_id,
                now,
            )
            for sent, (message_id, correlation_id, _) in zip(outbound.sets, documents, strict=True)
        ],
    )
    return name, list(outbound.sets)


def _queued_before(
    partner_id: str, message_ids: Sequence[str | None], conn: sqlite3.Connection
) -> tuple[str, list[SentSet]] | None:
    if not message_ids or None in message_ids:
        return None
    marks = ", ".join("?" * len(message_ids))
    rows = conn.execute(
        f"""
        SELECT o.name, s.document_type, s.set_id, s.group_number, s.transaction_set
        FROM edi_sent_sets AS s JOIN edi_outgoing AS o ON o.id = s.outgoing_id
        WHERE s.partner_id = ? AND s.message_id IN ({marks}) ORDER BY s.id
        """,
        (partner_id, *message_ids),
    ).fetchall()
    if len(rows) != len(message_ids):
        return None
    sets = [
        SentSet(document_type=doc, set_id=set_id, group=str(group), transaction_set=number)
        for _, doc, set_id, group, number in rows
    ]
    return str(rows[0][0]), sets


def _queue(
    partner_id: str,
    channel: str,
    kind: str,
    name: str,
    interchange: str,
    body: bytes,
    conn: sqlite3.Connection,
    now: float,
) -> int:
    cursor = conn.execute(
        """
        INSERT INTO edi_outgoing (partner_id, channel, kind, name, interchange, body, created_at)
        VALUES (?, ?, ?, ?, ?, ?, ?)
        """,
        (partner_id, channel, kind, name, interchange, body, now),
    )
    return int(cursor.lastrowid or 0)


def _apply_answer(
    partner_id: str, outcome: GroupOutcome, conn: sqlite3.Connection, now: float
) -> None:
    """Record what a partner's 997/999 says of the sets the gateway sent in that group."""
    if not outcome.control_number.isdigit():
        return
    rows = conn.execute(
        """
        SELECT id, group_number, transaction_set, set_id, document_type FROM edi_sent_sets
        WHERE partner_id = ? AND group_number = ?
        """,
        (partner_id, int(outcome.control_number)),
    ).fetchall()
    sent = [
        SentSet(document_type=doc, set_id=set_id, group=str(group), transaction_set=number)
        for _, group, number, set_id, doc in rows
    ]
    for (row_id, *_), answer in zip(rows, reconcile(sent, [outcome]), strict=True):
        if answer.status == "unacknowledged":
            continue
        conn.execute(
            """
            UPDATE edi_sent_sets SET status = ?, codes = ?, notes = ?, answered_at = ?
            WHERE id = ?
            """,
            (
                answer.status,
                " ".join(answer.codes),
                msgspec.json.encode(answer.notes) if answer.notes else None,
                now,
                row_id,
            ),
        )


def mark_put(outgoing_id: int, final_name: str, conn: sqlite3.Connection, now: float) -> None:
    """Record that a file to send is in the partner's outbound folder, under `final_name`."""
    conn.execute(
        "UPDATE edi_outgoing SET state = 'put', final_name = ?, put_at = ? "
        "WHERE id = ? AND state = 'pending'",
        (final_name, now, outgoing_id),
    )


def flag_sets(
    sent_ids: Sequence[int], rows: Sequence[FileRow], conn: sqlite3.Connection, now: float
) -> None:
    """Mark sets as raised and write the exceptions that raise them, in one transaction."""
    marks = ", ".join("?" * len(sent_ids))
    found = conn.execute(
        f"SELECT partner_id FROM edi_sent_sets WHERE id IN ({marks}) AND flagged_at IS NULL",
        tuple(sent_ids),
    ).fetchall()
    if len(found) != len(sent_ids):
        return  # raised before (another sweep): nothing twice
    conn.execute(f"UPDATE edi_sent_sets SET flagged_at = ? WHERE id IN ({marks})", (now, *sent_ids))
    conn.executemany(
        f"INSERT INTO outbox (partner_id, created_at, {_ROW_COLUMNS}) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(found[0][0], now, *_row_values(row)) for row in rows],
    )


def _row_values(row: FileRow) -> tuple[object, ...]:
    return (
        row.message_id,
        row.document_type,
        row.schema_version,
        row.routing_key,
        row.correlation_id,
        row.causation_id,
        row.idempotency_key,
        row.body,
    )


def purge_edi(
    seen_before: float, settled_before: float, limit: int, conn: sqlite3.Connection, now: float
) -> int:
    """Delete up to `limit` rows of each table nothing needs any more; returns how many went.

    Interchange keys received before `seen_before` (past the replay window); files put, and
    sets answered or raised, before `settled_before`. A file still to put, a set whose answer
    is awaited and not yet raised, are never purged; an interchange file goes once its sets do.
    """
    removed = conn.execute(
        """
        DELETE FROM edi_interchanges WHERE (partner_id, sender_qualifier, sender_id,
            receiver_qualifier, receiver_id, control_number) IN (
            SELECT partner_id, sender_qualifier, sender_id, receiver_qualifier, receiver_id,
                   control_number
            FROM edi_interchanges WHERE received_at < ? LIMIT ?)
        """,
        (seen_before, limit),
    ).rowcount
    removed += conn.execute(
        """
        DELETE FROM edi_sent_sets WHERE id IN (
            SELECT id FROM edi_sent_sets
            WHERE sent_at < ? AND (status != 'unacknowledged' OR flagged_at IS NOT NULL)
            LIMIT ?)
        """,
        (settled_before, limit),
    ).rowcount
    removed += conn.execute(
        """
        DELETE FROM edi_outgoing WHERE id IN (
            SELECT o.id FROM edi_outgoing AS o
            WHERE o.state = 'put' AND o.put_at < ?
              AND NOT EXISTS (SELECT 1 FROM edi_sent_sets AS s WHERE s.outgoing_id = o.id)
            LIMIT ?)
        """,
        (settled_before, limit),
    ).rowcount
    return removed


def _key_values(key: InterchangeKey) -> tuple[str, ...]:
    return (
        key.sender_qualifier,
        key.sender_id,
        key.receiver_qualifier,
        key.receiver_id,
        key.control_number,
    )


def answers_of(reading: X12Reading) -> X12Reading:
    """`reading` without its documents: what `finish_x12_file` needs, cheap to pickle."""
    return X12Reading(
        decoding=FileDecoding(),
        keys=reading.keys,
        acknowledgements=reading.acknowledgements,
        functional_acks=reading.functional_acks,
        profile=reading.profile,
    )


class Write(Protocol):
    async def __call__(self, operation: Callable[[sqlite3.Connection, float], T], /) -> T: ...


class Read(Protocol):
    async def __call__(self, query: Callable[[aiosqlite.Connection], Awaitable[T]], /) -> T: ...


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
                    (partner_id, *_key_values(key), since),
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

    async def purge(self, *, seen_before: float, settled_before: float, limit: int) -> int:
        """See `purge_edi`; run until it returns less than `limit` to purge everything due."""
        return await self._write(partial(purge_edi, seen_before, settled_before, limit))

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
    where: list[str] = ["1 = 1"]
    params: list[object] = []
    if status is not None:
        where.append("status = ?")
        params.append(status)
    if sent_before is not None:
        where.append("sent_at < ?")
        params.append(sent_before)
    if partner_id is not None:
        where.append("partner_id = ?")
        params.append(partner_id)
    sql = (
        f"SELECT {_SENT_COLUMNS} FROM edi_sent_sets WHERE {' AND '.join(where)} "
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
