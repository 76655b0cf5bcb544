"""Retention: how long the store keeps rows nothing needs any more, and the purge that enforces it.

What each table keeps (a limit of 0 or None keeps its rows for ever):

- inbox: idempotency records, for `idempotency_s` after they were written;
- outbox: published rows, for `outbox_s` after the broker confirmed them. A pending row is never
  purged; a dead one goes with its relay dead letter (a replay needs it while that exists);
- deliveries and their attempts: delivered ones for `deliveries_s` after delivery, dead ones for
  `dead_letters_s` after they died (as long as their dead letter); a pending one never;
- dead_letters: for `dead_letters_s` after they were written;
- workflow threads: a closed thread for `closed_threads_s` after its last step, with its
  journal and its timers (a document for it after that starts a new thread, which waits for
  an order that will not come and becomes an `unknown_purchase_order` exception);
- workflow journal (the inputs' consumed marks and the emitted events, what the trace shows):
  for `journal_s` after a row was applied. The consumed marks are kept twice, here and in the
  thread's state (`ThreadState.applied`), which is what stops a replay first; the feeder
  never replays more than a batch, so an old mark is needed by the trace alone.
- inventory: the positions' consumed marks and the drift records, for `inventory_s` after
  they were written (a position's state also remembers its recent delta ids, and the feeder
  never replays more than a batch behind its cursor).
- customer orders' status rows: a delivered or cancelled order for `customer_orders_s` after
  the last status report about it (`heard_at`). An order in any other state is never purged:
  the customer still asks for its status and a source still moves it on (an order the ERP
  never confirms stays `buffered`, shown `stale`, until someone looks). A report for an order
  purged after that finds no row and is logged as an unknown order, as one for a stranger's.
- X12: sets sent, once answered by a 997/999 or raised as unacknowledged, for `x12_s` after
  they were sent; files put in a partner's folder, for `x12_s` after the put, once none of
  their sets is left (a set names its file); interchange keys received, for `x12_s` after they
  were last received but never less than `x12_replay_window_s` (the longest replay window of
  any partner: the replay check, TA1 025, looks a key up that long). A file still to put and a
  set still awaiting its answer are never purged, nor are the control-number sequences
  (`edi_sequences`: the next ISA13/GS06 to write; purged, a partner would get numbers again).

Fired and cancelled timers go with their closed thread, not before: a timer's row holds its
generation, which the firing's consumed mark names (`timer:{kind}:{generation}`), so a row
purged and re-armed would start again at generation 1 and its firing would read as a replay.
There are at most four per thread (one per kind, reused by each re-arm).

No reader loses its place. The relay reads pending outbox rows after its seq, the couriers and
the pull API pending deliveries after their id; pending rows are never purged, and AUTOINCREMENT
never hands an id out twice, so rows deleted behind a cursor change nothing it reads next.

A purge walks each table in primary-key order, one window of rows per transaction, each a
group-commit operation like any other write: acceptances commit between two chunks, and a chunk
shares its transaction with at most one batch of them. A window is measured in bytes, not rows,
and sized to take about `chunk_s` of the writer's time: measured here, deleting an outbox row
costs ~5 us with a 1 KB body and ~4 ms with a 256 KB one, plus once or twice that at COMMIT,
so a count of rows sized on small rows would stall the writer for seconds on large ones. The
walk ends at the first window whose last row was written after the cutoff: ids are handed out
in commit order, so every later row is younger (rows a wall clock stepped back over go next
time).
"""

from __future__ import annotations

import sqlite3
import time
from functools import partial
from typing import NamedTuple

import msgspec

from gateway.store.access import Write
from gateway.store.orders import TERMINAL_STATES

__all__ = ["MIGRATION", "SETTLED_ORDER", "PurgeReport", "Retention", "purge", "purge_chunk"]


class Retention(msgspec.Struct, frozen=True, kw_only=True):
    """Seconds each kind of row is kept once nothing needs it; 0 or None keeps it for ever."""

    idempotency_s: float | None = None
    outbox_s: float | None = None
    deliveries_s: float | None = None
    dead_letters_s: float | None = None
    closed_threads_s: float | None = None
    journal_s: float | None = None
    inventory_s: float | None = None
    customer_orders_s: float | None = None
    x12_s: float | None = None
    # Interchange keys are kept at least this long (the longest replay window); not a
    # retention of its own: with `x12_s` 0 or None every X12 row is kept.
    x12_replay_window_s: float | None = None

    def keeps_everything(self) -> bool:
        return not any(
            (
                self.idempotency_s,
                self.outbox_s,
                self.deliveries_s,
                self.dead_letters_s,
                self.closed_threads_s,
                self.journal_s,
                self.inventory_s,
                self.customer_orders_s,
                self.x12_s,
            )
        )


class PurgeReport(msgspec.Struct, frozen=True, kw_only=True):
    """What one purge did."""

    # Rows deleted, per table (tables with none left out).
    removed: dict[str, int]
    # Transactions it took, and the longest time one chunk's statements held the writer.
    chunks: int
    longest_chunk_s: float


class _Pass(NamedTuple):
    """One walk: the table walked, its key, its rows' bulk, and the deletes run on each window.

    The key is an id handed out in commit order, or a time column with an index (rows of the
    same time fall in one window whole: a window runs from after one key up to another). A
    `scope` narrows the walk to the rows that may ever go (a partial index's WHERE, word for
    word, so the walk reads that index).

    `bulk` is the bytes of a row's large columns (`length()` reads a record's header, never an
    overflow page). Each delete names the table it deletes from; its parameters are `:after`
    and `:last` (the window: keys after and up to) and the pass's cutoffs (rows older than one
    may go; NULL, a limit of None, matches no row).
    """

    table: str
    key: str
    bulk: str
    deletes: tuple[tuple[str, str], ...]
    # When a row was written (keys are handed out in that order): where a walk may stop.
    written: str = "created_at"
    scope: str = "1"


_EXPIRED_DELIVERY = """
    ((state = 'delivered' AND settled_at < :kept) OR (state = 'dead' AND settled_at < :dead_kept))
"""
# A thread's created_at is at or before its updated_at, so a walk that stops at the first
# thread created after the cutoff misses none last changed before it.
_EXPIRED_THREAD = "status = 'closed' AND updated_at < :kept"
# A delivered or cancelled order: nothing moves it on any more (the partial index's WHERE).
SETTLED_ORDER = "status IN (" + ", ".join(f"'{s}'" for s in sorted(TERMINAL_STATES)) + ")"
# A set whose answer came, or that was raised as unacknowledged: nothing waits for it.
_SETTLED_SET = "(status != 'unacknowledged' OR flagged_at IS NOT NULL)"
_PASSES = {
    "inbox": _Pass(
        "inbox",
        "rowid",
        "length(response)",
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
        "length(body)",
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
        "length(body)",
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
        "length(payload) + length(detail)",
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
    "workflow_threads": _Pass(
        "workflow_threads",
        "id",
        "length(state)",
        (
            # Journal and timers first: they reference their thread.
            *(
                (
                    table,
                    f"""
                    DELETE FROM {table} WHERE thread_id IN (
                        SELECT id FROM workflow_threads
                        WHERE id > :after AND id <= :last AND {_EXPIRED_THREAD})
                    """,
                )
                for table in ("workflow_journal", "workflow_timers")
            ),
            (
                "workflow_threads",
                f"""
                DELETE FROM workflow_threads
                WHERE id > :after AND id <= :last AND {_EXPIRED_THREAD}
                """,
            ),
        ),
    ),
    "workflow_journal": _Pass(
        "workflow_journal",
        "id",
        "0",
        (
            (
                "workflow_journal",
                """
                DELETE FROM workflow_journal
                WHERE id > :after AND id <= :last AND applied_at < :kept
                """,
            ),
        ),
        written="applied_at",
    ),
    **{
        table: _Pass(
            table,
            "id",
            bulk,
            ((table, f"DELETE FROM {table} WHERE id > :after AND id <= :last AND {at} < :kept"),),
            written=at,
        )
        for table, bulk, at in (
            ("inventory_consumed", "0", "applied_at"),
            ("inventory_drift", "length(body)", "recorded_at"),
        )
    },
}
_PASSES |= {
    "customer_orders": _Pass(
        "customer_orders",
        "heard_at",
        "length(milestones)",
        (
            (
                "customer_orders",
                f"""
                DELETE FROM customer_orders WHERE {SETTLED_ORDER}
                  AND heard_at > :after AND heard_at <= :last AND heard_at < :kept
                """,
            ),
        ),
        written="heard_at",
        scope=SETTLED_ORDER,
    ),
    "edi_interchanges": _Pass(
        "edi_interchanges",
        "received_at",
        "0",
        (
            (
                "edi_interchanges",
                """
                DELETE FROM edi_interchanges
                WHERE received_at > :after AND received_at <= :last AND received_at < :kept
                """,
            ),
        ),
        written="received_at",
    ),
    # Sets before files: a file goes once none of its sets is left (its foreign key).
    "edi_sent_sets": _Pass(
        "edi_sent_sets",
        "id",
        "0",
        (
            (
                "edi_sent_sets",
                f"""
                DELETE FROM edi_sent_sets WHERE id > :after AND id <= :last
                  AND sent_at < :kept AND {_SETTLED_SET}
                """,
            ),
        ),
        written="sent_at",
    ),
    "edi_outgoing": _Pass(
        "edi_outgoing",
        "id",
        "length(body)",
        (
            (
                "edi_outgoing",
                """
                DELETE FROM edi_outgoing WHERE id > :after AND id <= :last
                  AND state = 'put' AND put_at < :kept
                  AND NOT EXISTS (SELECT 1 FROM edi_sent_sets WHERE outgoing_id = edi_outgoing.id)
                """,
            ),
        ),
    ),
}
# Schema version 11 (gateway/store/schema.py appends it): what the passes above walk by. A
# file's sets by the file, too: deleting a file checks that no set names it (foreign key).
MIGRATION: tuple[str, ...] = (
    f"CREATE INDEX customer_orders_settled ON customer_orders (heard_at) WHERE {SETTLED_ORDER}",
    "CREATE INDEX edi_interchanges_received ON edi_interchanges (received_at)",
    "CREATE INDEX edi_sent_sets_outgoing ON edi_sent_sets (outgoing_id)",
)
# What a row costs to delete beyond its bulk, in bytes: a 1 KB outbox row took 5 us, a 256 KB
# one 4 ms (~15 ns a byte); its index entries and cell weigh about a kilobyte's worth.
_ROW_BYTES = 1024
# The first window of a pass, in bytes; later ones are sized by the time the last one took,
# up to the most a window may weigh (past it, rows bound the window anyway).
_FIRST_BYTES = 64 * 1024
_MOST_BYTES = 1 << 30


class Chunk(NamedTuple):
    """What one chunk did; `last` is the key to walk on from, None once the walk is over."""

    removed: dict[str, int]
    last: float | None
    seconds: float


def purge_chunk(
    name: str,
    cutoffs: dict[str, float | None],
    after: float,
    budget: int,
    max_rows: int,
    conn: sqlite3.Connection,
    now: float,
) -> Chunk:
    """Delete what has expired in the next window of pass `name`, the rows after key `after`.

    The window holds up to `max_rows` rows, cut after the first row that brings its bytes
    (bulk plus `_ROW_BYTES` a row) to `budget`: one large row is a window of its own. A
    group-commit operation: bound with `functools.partial`, run inside `commit_batch`.
    """
    walk = _PASSES[name]
    started = time.perf_counter()
    (last,) = conn.execute(
        f"""
        SELECT max(key) FROM (
            SELECT key, sum(bytes) OVER (ORDER BY key) - bytes AS before
            FROM (SELECT {walk.key} AS key, {walk.bulk} + {_ROW_BYTES} AS bytes
                  FROM {walk.table} WHERE {walk.scope} AND {walk.key} > ?
                  ORDER BY {walk.key} LIMIT ?))
        WHERE before < ?
        """,
        # Every row weighs `_ROW_BYTES` at least: rows past these never fit in the budget.
        (after, min(max_rows, budget // _ROW_BYTES + 1), budget),
    ).fetchone()
    if last is None:
        return Chunk({}, None, time.perf_counter() - started)
    # Walk on while the window's last row is older than the newest cutoff and has a successor
    # (asked before the deletes, which may take that row).
    newest = max(cutoff for cutoff in cutoffs.values() if cutoff is not None)
    (more,) = conn.execute(
        f"""
        SELECT EXISTS (SELECT 1 FROM {walk.table} WHERE {walk.scope} AND {walk.key} > :last)
           AND (SELECT {walk.written} FROM {walk.table}
                WHERE {walk.scope} AND {walk.key} = :last) < :newest
        """,
        {"last": last, "newest": newest},
    ).fetchone()
    params: dict[str, object] = {"after": after, "last": last}
    params.update(cutoffs)
    removed: dict[str, int] = {}
    for table, sql in walk.deletes:
        removed[table] = removed.get(table, 0) + conn.execute(sql, params).rowcount
    return Chunk(removed, last if more else None, time.perf_counter() - started)


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
        "workflow_threads": {"kept": before(retention.closed_threads_s)},
        "workflow_journal": {"kept": before(retention.journal_s)},
        "inventory_consumed": {"kept": before(retention.inventory_s)},
        "inventory_drift": {"kept": before(retention.inventory_s)},
        "customer_orders": {"kept": before(retention.customer_orders_s)},
        "edi_interchanges": {
            "kept": before(max(retention.x12_s, retention.x12_replay_window_s or 0))
            if retention.x12_s
            else None
        },
        "edi_sent_sets": {"kept": before(retention.x12_s)},
        "edi_outgoing": {"kept": before(retention.x12_s)},
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

    Each pass starts with a small window; later ones are sized in bytes by the time the last
    one took, to take about `chunk_s` of the writer's time (its statements; the COMMIT it
    shares adds once or twice that), and hold `max_rows` rows at most.
    """
    removed: dict[str, int] = {}
    chunks = 0
    longest = 0.0
    for name, cutoffs in _cutoffs(retention, now).items():
        after: float | None = 0
        budget = _FIRST_BYTES
        while after is not None:
            chunk = await write(partial(purge_chunk, name, cutoffs, after, budget, max_rows))
            chunks += 1
            longest = max(longest, chunk.seconds)
            for table, count in chunk.removed.items():
                if count:
                    removed[table] = removed.get(table, 0) + count
            budget = _next_budget(budget, chunk.seconds, chunk_s)
            after = chunk.last
    return PurgeReport(removed=removed, chunks=chunks, longest_chunk_s=longest)


def _next_budget(budget: int, seconds: float, target_s: float) -> int:
    """The next window's bytes: scaled toward `target_s`, at most doubled, at least one row."""
    scale = 2.0 if seconds <= 0 else min(2.0, target_s / seconds)
    return max(_ROW_BYTES, min(_MOST_BYTES, int(budget * scale)))
