"""Received files in the store: each file's fingerprint, committed with every row it carries.

A file is one acceptance, however long: its fingerprint (partner, channel, path, size, mtime,
sha256) is unique, and the outbox rows of its documents and problems become visible in the
same transaction that marks it accepted or refused. A long file is staged first: `begin`
claims the fingerprint, `stage` writes chunks of rows to `received_file_rows` (commits the
relay never reads), and `finish` moves them into the outbox and marks the file, in one
transaction. The gateway process holds one chunk at a time and the writer process copies
the rows inside SQLite, so a 100k-line file costs no more memory than a short one. A crash
while staging leaves a `staging` file whose rows the next `begin` throws away.

The move on the partner's side is state too: `move` is 'pending' from the commit until the
file is in its archive or error folder, so a move lost to a dropped connection is retried on
the next round (`pending_moves`), never forgotten. Reach it as `store.files`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from functools import partial
from typing import Any, Literal

import aiosqlite
from msgspec import Struct

from canonical.files import FileRow, Fingerprint
from gateway.store.access import Read, Write

__all__ = [
    "MIGRATION",
    "FileLedger",
    "FileState",
    "PendingMove",
    "ReceivedFile",
    "begin_file",
    "finish_file",
    "mark_moved",
    "purge_staged",
    "queue_rows",
    "stage_rows",
]


# Staged rows deleted per transaction: a chunk's pages are what one savepoint keeps in memory.
PURGE_CHUNK_ROWS = 2000

Folder = Literal["archive", "error"]
FileState = Literal["staging", "accepted", "refused"]

# Schema version 5 (gateway/store/schema.py appends it).
MIGRATION: tuple[str, ...] = (
    # One row per file fingerprint. A re-upload under the same name with new content (another
    # size, mtime or hash) is another row: a new file.
    """
    CREATE TABLE received_files (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        partner_id   TEXT NOT NULL,
        channel      TEXT NOT NULL,
        path         TEXT NOT NULL,
        size         INTEGER NOT NULL,
        mtime        INTEGER NOT NULL,
        sha256       TEXT NOT NULL,
        state        TEXT NOT NULL CHECK (state IN ('staging', 'accepted', 'refused')),
        documents    INTEGER NOT NULL DEFAULT 0,
        problems     INTEGER NOT NULL DEFAULT 0,
        reason       TEXT,
        folder       TEXT CHECK (folder IN ('archive', 'error')),
        move         TEXT NOT NULL DEFAULT 'pending' CHECK (move IN ('pending', 'done')),
        received_at  REAL NOT NULL,
        committed_at REAL,
        moved_at     REAL,
        UNIQUE (partner_id, channel, path, size, mtime, sha256)
    )
    """,
    # Committed files still to move on the partner's side: the poller's first read each round.
    """
    CREATE INDEX received_files_moves ON received_files (partner_id, channel, id)
    WHERE move = 'pending' AND state != 'staging'
    """,
    "CREATE INDEX received_files_committed ON received_files (committed_at)",
    # Rows of a file being staged, moved into the outbox by `finish_file`.
    """
    CREATE TABLE received_file_rows (
        file_id         INTEGER NOT NULL REFERENCES received_files (id),
        position        INTEGER NOT NULL,
        message_id      TEXT NOT NULL,
        document_type   TEXT NOT NULL,
        schema_version  INTEGER NOT NULL,
        routing_key     TEXT NOT NULL,
        correlation_id  TEXT NOT NULL,
        causation_id    TEXT,
        idempotency_key TEXT NOT NULL,
        body            BLOB NOT NULL,
        PRIMARY KEY (file_id, position)
    )
    """,
)


class ReceivedFile(Struct, frozen=True, kw_only=True):
    """A file as the store knows it."""

    id: int
    partner_id: str
    channel: str
    path: str
    size: int
    mtime: int
    sha256: str
    state: FileState
    documents: int
    problems: int
    reason: str | None
    folder: Folder | None
    moved: bool
    received_at: float


class PendingMove(Struct, frozen=True, kw_only=True):
    """A committed file not yet in its folder on the partner's side."""

    id: int
    path: str
    size: int
    mtime: int
    folder: Folder


_COLUMNS = """
    id, partner_id, channel, path, size, mtime, sha256, state, documents, problems, reason,
    folder, move, received_at
"""
_FIND = f"""
    SELECT {_COLUMNS} FROM received_files
    WHERE partner_id = ? AND channel = ? AND path = ? AND size = ? AND mtime = ? AND sha256 = ?
"""
_ROW_COLUMNS = (
    "message_id, document_type, schema_version, routing_key, correlation_id, causation_id, "
    "idempotency_key, body"
)


def _key_params(key: Fingerprint) -> tuple[object, ...]:
    return (key.partner_id, key.channel, key.path, key.size, key.mtime, key.sha256)


def _received(row: Sequence[Any]) -> ReceivedFile:
    (
        id_,
        partner,
        channel,
        path,
        size,
        mtime,
        sha,
        state,
        docs,
        probs,
        reason,
        folder,
        move,
        at,
    ) = row
    return ReceivedFile(
        id=id_,
        partner_id=partner,
        channel=channel,
        path=path,
        size=size,
        mtime=mtime,
        sha256=sha,
        state=state,
        documents=docs,
        problems=probs,
        reason=reason,
        folder=folder,
        moved=move == "done",
        received_at=at,
    )


# Writes: bound with functools.partial, run inside a group commit (gateway/store/writer.py).


def begin_file(key: Fingerprint, conn: sqlite3.Connection, now: float) -> int | ReceivedFile:
    """Claim `key` for staging: its file id, or the file as committed before (a duplicate).

    A file left in 'staging' by a crash is claimed again, its staged rows thrown away.
    """
    found = conn.execute(_FIND, _key_params(key)).fetchone()
    if found is None:
        cursor = conn.execute(
            """
            INSERT INTO received_files (partner_id, channel, path, size, mtime, sha256, state,
                                        received_at)
            VALUES (?, ?, ?, ?, ?, ?, 'staging', ?)
            """,
            (*_key_params(key), now),
        )
        return int(cursor.lastrowid or 0)
    seen = _received(found)
    if seen.state != "staging":
        return seen
    # Rows staged before a crash: `FileLedger.begin` purges them before staging anew.
    return seen.id


def purge_staged(file_id: int | None, limit: int, conn: sqlite3.Connection, now: float) -> int:
    """Delete up to `limit` staged rows of `file_id` (None: of every file no longer being
    staged, left by a crash after its commit); returns how many went."""
    if file_id is not None:
        sql = """
            DELETE FROM received_file_rows WHERE rowid IN (
                SELECT rowid FROM received_file_rows WHERE file_id = ? LIMIT ?)
        """
        return conn.execute(sql, (file_id, limit)).rowcount
    sql = """
        DELETE FROM received_file_rows WHERE rowid IN (
            SELECT r.rowid FROM received_file_rows AS r
            JOIN received_files AS f ON f.id = r.file_id
            WHERE f.state != 'staging' LIMIT ?)
    """
    return conn.execute(sql, (limit,)).rowcount


def stage_rows(file_id: int, rows: Sequence[FileRow], conn: sqlite3.Connection, now: float) -> None:
    """Keep a chunk of a staging file's rows; the relay sees none until `finish_file`."""
    conn.executemany(
        f"INSERT INTO received_file_rows (file_id, position, {_ROW_COLUMNS}) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(file_id, *_values(row)) for row in rows],
    )


def finish_file(
    file_id: int,
    state: Literal["accepted", "refused"],
    documents: int,
    problems: int,
    reason: str | None,
    rows: Sequence[FileRow],
    conn: sqlite3.Connection,
    now: float,
) -> int:
    """Commit a staging file: its staged rows and `rows` into the outbox, in position order,
    and its verdict; returns the outbox rows written. Its move is pending from here on.

    A refused file carries no staged document (they are thrown away), only `rows` (the
    exception that says why).
    """
    found = conn.execute("SELECT state FROM received_files WHERE id = ?", (file_id,)).fetchone()
    if found is None or found[0] != "staging":
        raise sqlite3.IntegrityError(f"received file {file_id} is not being staged")
    partner_id = conn.execute(
        "SELECT partner_id FROM received_files WHERE id = ?", (file_id,)
    ).fetchone()[0]
    written = 0
    if state == "accepted":
        written += conn.execute(
            f"""
            INSERT INTO outbox (partner_id, created_at, {_ROW_COLUMNS})
            SELECT ?, ?, {_ROW_COLUMNS} FROM received_file_rows
            WHERE file_id = ? ORDER BY position
            """,
            (partner_id, now, file_id),
        ).rowcount
    # The staged rows are deleted afterwards, in chunks of their own (`purge_staged`): deleted
    # here, the savepoint every write runs in kept the original of each of their pages in
    # memory, 70 MB for a 100k-line file (measured).
    if rows:
        queue_rows(partner_id, sorted(rows, key=_position), conn, now)
        written += len(rows)
    conn.execute(
        """
        UPDATE received_files
        SET state = ?, documents = ?, problems = ?, reason = ?, folder = ?, committed_at = ?
        WHERE id = ?
        """,
        (
            state,
            documents,
            problems,
            reason,
            "archive" if state == "accepted" else "error",
            now,
            file_id,
        ),
    )
    return written


def queue_rows(
    partner_id: str, rows: Sequence[FileRow], conn: sqlite3.Connection, now: float
) -> None:
    """Put `rows` in the outbox for `partner_id`, in the order given, inside the caller's
    transaction."""
    conn.executemany(
        f"INSERT INTO outbox (partner_id, created_at, {_ROW_COLUMNS}) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(partner_id, now, *_values(row)[1:]) for row in rows],
    )


def mark_moved(file_id: int, conn: sqlite3.Connection, now: float) -> None:
    """Record that a committed file is in its folder on the partner's side."""
    conn.execute(
        "UPDATE received_files SET move = 'done', moved_at = ? WHERE id = ? AND move = 'pending'",
        (now, file_id),
    )


def _values(row: FileRow) -> tuple[object, ...]:
    return (
        row.position,
        row.message_id,
        row.document_type,
        row.schema_version,
        row.routing_key,
        row.correlation_id,
        row.causation_id,
        row.idempotency_key,
        row.body,
    )


def _position(row: FileRow) -> int:
    return row.position


class FileLedger:
    """Received files: claim, stage, commit, move; and what an operator or test reads."""

    def __init__(self, write: Write, read: Read) -> None:
        self._write = write
        self._read = read
        self._swept = False

    async def find(self, key: Fingerprint) -> ReceivedFile | None:
        """The file with this fingerprint, if the store has seen it (in any state)."""
        rows = await self._read(partial(_fetch, _FIND, _key_params(key)))
        return _received(rows[0]) if rows else None

    async def begin(self, key: Fingerprint) -> int | ReceivedFile:
        """See `begin_file`; a file claimed again after a crash loses its staged rows first."""
        if not self._swept:
            await self._purge(None)  # once per store: leftovers of files committed before
            self._swept = True
        claimed = await self._write(partial(begin_file, key))
        if isinstance(claimed, int):
            await self._purge(claimed)
        return claimed

    async def purge(self, file_id: int) -> None:
        """Delete a committed file's staged rows, in chunks (after a commit made elsewhere)."""
        await self._purge(file_id)

    async def _purge(self, file_id: int | None) -> None:
        while await self._write(partial(purge_staged, file_id, PURGE_CHUNK_ROWS)):
            pass

    async def stage(self, file_id: int, rows: Sequence[FileRow]) -> None:
        """See `stage_rows`."""
        if rows:
            await self._write(partial(stage_rows, file_id, tuple(rows)))

    async def finish(
        self,
        file_id: int,
        *,
        state: Literal["accepted", "refused"],
        documents: int,
        problems: int,
        reason: str | None,
        rows: Sequence[FileRow] = (),
    ) -> int:
        """See `finish_file`."""
        written = await self._write(
            partial(finish_file, file_id, state, documents, problems, reason, tuple(rows))
        )
        await self._purge(file_id)
        return written

    async def moved(self, file_id: int) -> None:
        """See `mark_moved`."""
        await self._write(partial(mark_moved, file_id))

    async def pending_moves(self, partner_id: str, channel: str, limit: int) -> list[PendingMove]:
        """Committed files of one channel still to move, oldest first."""
        rows = await self._read(
            partial(
                _fetch,
                """
                SELECT id, path, size, mtime, folder FROM received_files
                WHERE partner_id = ? AND channel = ? AND move = 'pending' AND state != 'staging'
                ORDER BY id LIMIT ?
                """,
                (partner_id, channel, limit),
            )
        )
        return [
            PendingMove(id=i, path=path, size=size, mtime=mtime, folder=folder)
            for i, path, size, mtime, folder in rows
        ]

    async def received(self, partner_id: str, *, limit: int = 100) -> list[ReceivedFile]:
        """A partner's files, newest first."""
        rows = await self._read(
            partial(
                _fetch,
                f"SELECT {_COLUMNS} FROM received_files WHERE partner_id = ? "
                "ORDER BY id DESC LIMIT ?",
                (partner_id, limit),
            )
        )
        return [_received(row) for row in rows]


async def _fetch(sql: str, params: tuple[object, ...], db: aiosqlite.Connection) -> list[Any]:
    async with db.execute(sql, params) as cursor:
        return list(await cursor.fetchall())
