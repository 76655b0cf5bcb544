"""Retention: how long the store keeps rows nothing needs any more, and the purge that enforces it.

What each table keeps (a limit of 0 or None keeps its rows for ever):

- inbox: idempotency records, for `idempotency_s` after they were written;
- outbox: published rows, for `outbox_s` after the broker confirmed them. A pending row is never
  purged; a dead one goes with its relay dead letter (a replay needs it while that exists);
- deliveries and their attempts: delivered ones for `deliveries_s` after delivery, dead ones for
  `dead_letters_s` after they died (as long as their dead letter); a pending one never;
- dead_letters: for `dead_letters_s` after they were written.

No reader loses its place. The relay reads pending outbox rows after its seq, the couriers and
the pull API pending deliveries after their id; pending rows are never purged, and AUTOINCREMENT
never hands an id out twice, so rows deleted behind a cursor change nothing it reads next.

A purge walks each table in primary-key order, one window of rows per transaction, each a
group-commit operation like any other write: acceptances commit between two chunks, and a chunk
shares its transaction with at most one batch of them. A window is sized to take about
`chunk_s` of the writer's time, not a fixed count of rows: measured here, deleting a row costs
from ~5 us (a 1 KB message) to ~4 ms (a 1 MB one), plus about as much again at COMMIT. The walk
ends at the first window whose last row was written after the cutoff: ids are handed out in
commit order, so every later row is younger (rows a wall clock stepped back over go next time).
"""

from __future__ import annotations

import sqlite3
import time
from functools import partial
from typing import NamedTuple

import msgspec

from gateway.store.deliveries import Write

__all__ = ["PurgeReport", "Retention", "purge", "purge_chunk"]


class Retention(msgspec.Struct, frozen=True, kw_only=True):
    """Seconds each kind of row is kept once nothing needs it; 0 or None keeps it for ever."""

    idempotency_s: float | None = None
    outbox_s: float | None = None
    deliveries_s: float | None = None
    dead_letters_s: float | None = None

    def keeps_everything(self) -> bool:
        return not any((self.idempotency_s, self.outbox_s, self.deliveries_s, self.dead_letters_s))


class PurgeReport(msgspec.Struct, frozen=True, kw_only=True):
    """What one purge did."""

    # Rows deleted, per table (tables with none left out).
    removed: dict[str, int]
    # Transactions it took, and the longest time one chunk's statements held the writer.
    chunks: int
    longest_chunk_s: float


class _Pass(NamedTuple):
    """One walk: the table walked, its key, and the deletes run on each window of it.

    Each delete names the table it deletes from; its parameters are `:after` and `:last` (the
    window, keys after and up to) and the pass's cutoffs (rows older than one may go; NULL, a
    limit of None, matches no row).
    """

    table: str
    key: str
    deletes: tuple[tuple[str, str], ...]


_EXPIRED_DELIVERY = """
    ((state = 'delivered' AND settled_at < :kept) OR (state = 'dead' AND settled_at < :dead_kept))
"""
_PASSES = {
    "inbox": _Pass(
        "inbox",
        "rowid",
        (
            (
                "inbox",
                "DELETE FROM inbox WHERE rowid > :after AND rowid <= :last AND created_at < :kept",
            ),
        ),
    ),
    "outbox": _Pass(
        "outbox",
        "seq",
        (
            (
                "outbox",
                """
                DELETE FROM outbox WHERE seq > :after AND seq <= :last
                  AND state = 'published' AND published_at < :kept
                """,
            ),
        ),
    ),
    "deliveries": _Pass(
        "deliveries",
        "id",
        (
            # Attempts first: they reference their delivery (foreign_keys is on).
            (
                "delivery_attempts",
                f"""
                DELETE FROM delivery_attempts WHERE delivery_id IN (
                    SELECT id FROM deliveries
                    WHERE id > :after AND id <= :last AND {_EXPIRED_DELIVERY})
                """,
            ),
            (
                "deliveries",
                f"DELETE FROM deliveries WHERE id > :after AND id <= :last AND {_EXPIRED_DELIVERY}",
            ),
        ),
    ),
    "dead_letters": _Pass(
        "dead_letters",
        "id",
        (
            # A relay dead letter takes its dead outbox row along (found by its unique index).
            (
                "outbox",
                """
                DELETE FROM outbox WHERE state = 'dead' AND message_id IN (
                    SELECT message_id FROM dead_letters
                    WHERE id > :after AND id <= :last AND created_at < :kept AND source = 'relay')
                """,
            ),
            (
                "dead_letters",
                """
                DELETE FROM dead_letters WHERE id > :after AND id <= :last AND created_at < :kept
                """,
            ),
        ),
    ),
}
_LAST_KEY = (1 << 63) - 1
# The first window of a pass; later ones are sized by the time the last one took.
_FIRST_ROWS = 64


class Chunk(NamedTuple):
    """What one chunk did; `last` is the key to walk on from, None once the walk is over."""

    removed: dict[str, int]
    last: int | None
    seconds: float


def purge_chunk(
    name: str,
    cutoffs: dict[str, float | None],
    after: int,
    rows: int,
    conn: sqlite3.Connection,
    now: float,
) -> Chunk:
    """Delete what has expired among the `rows` rows of pass `name` after key `after`.

    A group-commit operation: bound with `functools.partial`, run inside `commit_batch`.
    """
    walk = _PASSES[name]
    started = time.perf_counter()
    # Steps over `rows` keys of the table's own b-tree: no row is decoded but the last.
    found = conn.execute(
        f"SELECT {walk.key}, created_at FROM {walk.table} WHERE {walk.key} > ? "
        f"ORDER BY {walk.key} LIMIT 1 OFFSET ?",
        (after, rows - 1),
    ).fetchone()
    params: dict[str, object] = {"after": after, "last": _LAST_KEY if found is None else found[0]}
    params.update(cutoffs)
    removed: dict[str, int] = {}
    for table, sql in walk.deletes:
        removed[table] = removed.get(table, 0) + conn.execute(sql, params).rowcount
    newest = max(cutoff for cutoff in cutoffs.values() if cutoff is not None)
    more = found is not None and found[1] < newest
    return Chunk(removed, found[0] if more else None, time.perf_counter() - started)


def _cutoffs(retention: Retention, now: float) -> dict[str, dict[str, float | None]]:
    """Each pass's cutoffs at `now`; a pass with nothing to delete is left out."""

    def before(limit: float | None) -> float | None:
        return now - limit if limit else None

    passes: dict[str, dict[str, float | None]] = {
        "inbox": {"kept": before(retention.idempotency_s)},
        "outbox": {"kept": before(retention.outbox_s)},
        "deliveries": {
            "kept": before(retention.deliveries_s),
            "dead_kept": before(retention.dead_letters_s),
        },
        "dead_letters": {"kept": before(retention.dead_letters_s)},
    }
    return {
        name: cutoffs
        for name, cutoffs in passes.items()
        if any(cutoff is not None for cutoff in cutoffs.values())
    }


async def purge(
    write: Write, retention: Retention, now: float, *, max_rows: int, chunk_s: float
) -> PurgeReport:
    """Delete every row `retention` lets go of at `now`, one chunk per transaction.

    A chunk after the first holds at most `max_rows` rows and is sized to take about `chunk_s`
    of the writer's time (its statements; the COMMIT it shares adds about as much again).
    """
    removed: dict[str, int] = {}
    chunks = 0
    longest = 0.0
    rows = min(_FIRST_ROWS, max_rows)
    for name, cutoffs in _cutoffs(retention, now).items():
        after: int | None = 0
        while after is not None:
            chunk = await write(partial(purge_chunk, name, cutoffs, after, rows))
            chunks += 1
            longest = max(longest, chunk.seconds)
            for table, count in chunk.removed.items():
                if count:
                    removed[table] = removed.get(table, 0) + count
            rows = _next_rows(rows, chunk.seconds, chunk_s, max_rows)
            after = chunk.last
    return PurgeReport(removed=removed, chunks=chunks, longest_chunk_s=longest)


def _next_rows(rows: int, seconds: float, target_s: float, max_rows: int) -> int:
    """The next window: scaled toward `target_s`, at most doubled, within 1..`max_rows`."""
    scale = 2.0 if seconds <= 0 else min(2.0, target_s / seconds)
    return max(1, min(max_rows, int(rows * scale)))
