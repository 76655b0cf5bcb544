"""The write transactions, each run whole by the writer process (gateway/store/process.py).

A group commit is one call of `commit_batch`: BEGIN IMMEDIATE, one query for every idempotency
key of the batch, one multi-row INSERT for the new inbox rows and one for the outbox rows, the
batch's other writes (relay marks, dead letters, actor state, a purge's chunk), COMMIT. Running
it as one plain function in one request to the writer means nothing can interleave with it, and
a failure is rolled back before the function returns: the caller never sees a transaction left
open.

A batch costs about five statements whatever its size. Each statement is a round of binding,
stepping and resetting through the sqlite3 module (and each released and re-took the GIL,
which mattered while the writer was a thread of the event loop's process); one multi-row
INSERT costs 8.8 us a row against 10.6 for `executemany` with its step per row.

Errors are sorted by whom they concern. A constraint or value error belongs to the one request
whose rows caused it (a duplicated message id): the batch's inserts are rolled back and redone
request by request, each inside a savepoint, and the batch commits without the one that failed.
Anything else (disk full, I/O error, corruption, a lock that never came) belongs to the batch:
everything is rolled back and the error propagates.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, cast

import msgspec

from canonical.errors import GatewayError, IdempotencyConflict, IdempotencyKeyReused
from gateway.store.records import Acceptance, Accepted

__all__ = [
    "Operation",
    "OperationFailed",
    "commit_batch",
    "dead_letter",
    "mark_dead",
    "mark_published",
    "save_state",
]

Operation = Callable[[sqlite3.Connection, float], Any]
"""A write that shares a group commit: called with the connection and the batch's timestamp."""

_REQUEST_ERRORS = (
    OverflowError,  # an integer SQLite cannot hold
    sqlite3.IntegrityError,
    sqlite3.DataError,
    sqlite3.ProgrammingError,
    sqlite3.InterfaceError,
)

_FIND_KEYS = """
    SELECT i.partner_id, i.idempotency_key, i.body_hash, i.status, i.response
    FROM json_each(?) AS k
    JOIN inbox AS i
      ON i.partner_id = json_extract(k.value, '$[0]')
     AND i.idempotency_key = json_extract(k.value, '$[1]')
"""
_INBOX_COLUMNS = ("partner_id", "idempotency_key", "body_hash", "status", "response", "created_at")
# No seq: AUTOINCREMENT numbers the rows of one INSERT consecutively, in VALUES order, so the
# cursor's lastrowid tells every row its seq without a query.
_OUTBOX_COLUMNS = (
    "message_id",
    "partner_id",
    "document_type",
    "schema_version",
    "routing_key",
    "correlation_id",
    "causation_id",
    "idempotency_key",
    "body",
    "created_at",
)
# next_attempt_at = created_at: the first attempt is immediate, the retry schedule starts after.
_DELIVERY_COLUMNS = (
    "partner_id",
    "message_id",
    "document_type",
    "aggregate_key",
    "correlation_id",
    "body",
    "next_attempt_at",
    "created_at",
)
#: Rows per INSERT statement. One statement text per row count up to this is prepared once and
#: kept in the connection's statement cache (`STATEMENT_CACHE_SIZE` leaves room for all of them).
ROWS_PER_INSERT = 64
STATEMENT_CACHE_SIZE = 512

_MARK_PUBLISHED = """
    UPDATE outbox SET state = 'published', published_at = ?2
    WHERE seq IN (SELECT value FROM json_each(?1)) AND state = 'pending'
"""


_encode = msgspec.json.Encoder().encode


class OperationFailed(msgspec.Struct, frozen=True):
    """The outcome of a request that failed alone while its batch committed."""

    error: Exception


AcceptOutcome = Accepted | GatewayError


def commit_batch(
    conn: sqlite3.Connection,
    acceptances: Sequence[Acceptance],
    operations: Sequence[Operation],
    now: float,
) -> tuple[list[AcceptOutcome], list[Any]]:
    """Run one group-commit transaction; return one outcome per acceptance and per operation.

    An operation's outcome is its return value, or `OperationFailed` when it failed alone.
    Raises (after ROLLBACK) when the batch as a whole cannot commit.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        answers: list[AcceptOutcome] = []
        if acceptances:
            try:
                answers = _accept_all(conn, acceptances, now, alone=False)
            except _REQUEST_ERRORS:
                if not conn.in_transaction:
                    raise
                # One request's rows broke a constraint. Nothing but the batch's own inserts
                # has run in this transaction yet: start it again, one request at a time.
                conn.execute("ROLLBACK")
                conn.execute("BEGIN IMMEDIATE")
                answers = _accept_all(conn, acceptances, now, alone=True)
        results = [_alone(conn, operation, now) for operation in operations]
        conn.execute("COMMIT")
    except BaseException:
        # SQLite may already have rolled back (SQLITE_FULL, IOERR); a COMMIT that failed has not.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return answers, results


def _accept_all(
    conn: sqlite3.Connection, acceptances: Sequence[Acceptance], now: float, *, alone: bool
) -> list[AcceptOutcome]:
    keys = [[(a.partner_id, key) for key in a.idempotency_keys()] for a in acceptances]
    stored = {
        (partner, key): (body_hash, status, response)
        for partner, key, body_hash, status, response in conn.execute(
            _FIND_KEYS, (_encode([k for own in keys for k in own]).decode(),)
        )
    }
    answers: list[AcceptOutcome | None] = [None] * len(acceptances)
    fresh: list[int] = []
    seen: set[tuple[str, str]] = set()
    for i, (acceptance, own) in enumerate(zip(acceptances, keys, strict=True)):
        busy = next((key for key in own if key in seen), None)
        if busy is not None:
            # The store's in-flight set already keeps such a second request out of the queue;
            # the rule holds here too, so no batch, however built, inserts a key twice.
            answers[i] = IdempotencyConflict(f"idempotency key {busy[1]!r} is already in flight")
            continue
        seen.update(own)
        # Any kept key makes this a retry; the first one answers (the transport's own id
        # before an alias the sender chose). A new request keeps all of its keys.
        key = next((key for key in own if key in stored), None)
        if key is None:
            fresh.append(i)
            continue
        found = stored[key]
        if found[0] == acceptance.body_hash:
            answers[i] = Accepted(status=found[1], body=found[2], replayed=True)
        else:
            answers[i] = IdempotencyKeyReused(
                f"idempotency key {key[1]!r} was first used with another body"
            )
    if alone:
        for i in fresh:
            answers[i] = _insert_alone(conn, acceptances[i], now)
    elif fresh:
        inserted = _insert(conn, [acceptances[i] for i in fresh], now)
        for i, outcome in zip(fresh, inserted, strict=True):
            answers[i] = outcome
    # Every index is now answered: either above, or as one of `fresh`.
    return cast(list[AcceptOutcome], answers)


def _insert(
    conn: sqlite3.Connection, acceptances: Sequence[Acceptance], now: float
) -> list[AcceptOutcome]:
    _insert_rows(
        conn,
        "inbox",
        _INBOX_COLUMNS,
        [
            (a.partner_id, key, a.body_hash, a.response_status, a.response_body, now)
            for a in acceptances
            for key in a.idempotency_keys()
        ],
    )
    rows = [
        (
            r.message_id,
            a.partner_id,
            r.document_type,
            r.schema_version,
            r.routing_key,
            r.correlation_id,
            r.causation_id,
            a.idempotency_key,
            r.body,
            now,
        )
        for a in acceptances
        for r in a.records
    ]
    next_seq = _insert_rows(conn, "outbox", _OUTBOX_COLUMNS, rows) - len(rows) + 1
    answers: list[AcceptOutcome] = []
    for a in acceptances:
        seqs = tuple(range(next_seq, next_seq + len(a.records)))
        next_seq += len(a.records)
        answers.append(
            Accepted(status=a.response_status, body=a.response_body, replayed=False, seqs=seqs)
        )
    _insert_rows(
        conn,
        "deliveries",
        _DELIVERY_COLUMNS,
        [
            (
                d.partner_id,
                d.message_id,
                d.document_type,
                d.aggregate_key,
                d.correlation_id,
                d.body,
                now,
                now,
            )
            for a in acceptances
            for d in a.deliveries
        ],
    )
    return answers


def _insert_rows(
    conn: sqlite3.Connection,
    table: str,
    columns: tuple[str, ...],
    rows: Sequence[tuple[object, ...]],
) -> int:
    """Insert `rows` with as few statements as `ROWS_PER_INSERT` allows; return the last rowid."""
    last = 0
    for start in range(0, len(rows), ROWS_PER_INSERT):
        chunk = rows[start : start + ROWS_PER_INSERT]
        values = [value for row in chunk for value in row]
        last = conn.execute(_insert_statement(table, columns, len(chunk)), values).lastrowid or 0
    return last


@functools.cache
def _insert_statement(table: str, columns: tuple[str, ...], rows: int) -> str:
    row = "(" + ", ".join("?" * len(columns)) + ")"
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([row] * rows)}"


def _insert_alone(conn: sqlite3.Connection, acceptance: Acceptance, now: float) -> AcceptOutcome:
    outcome = _alone(conn, lambda c, t: _insert(c, [acceptance], t)[0], now)
    if isinstance(outcome, OperationFailed):
        return GatewayError(f"the store refused the request's rows: {outcome.error}")
    answer: AcceptOutcome = outcome
    return answer


def _alone(conn: sqlite3.Connection, operation: Operation, now: float) -> Any:
    """Run one request's writes in a savepoint, so its own failure does not sink the batch."""
    conn.execute("SAVEPOINT request")
    try:
        result = operation(conn, now)
    except _REQUEST_ERRORS as exc:
        if not conn.in_transaction:
            raise
        conn.execute("ROLLBACK TO request")
        conn.execute("RELEASE request")
        return OperationFailed(exc)
    conn.execute("RELEASE request")
    return result


# Operations: bound with functools.partial by the store, run inside `commit_batch`.


def mark_published(seqs: Sequence[int], conn: sqlite3.Connection, now: float) -> None:
    """Mark outbox rows published (the broker confirmed them); rows not pending are left."""
    conn.execute(_MARK_PUBLISHED, (_encode(seqs).decode(), now))


def mark_dead(seq: int, reason: str, conn: sqlite3.Connection, now: float) -> None:
    """Give up on one pending outbox row: mark it dead and keep a dead letter with its body."""
    conn.execute(
        """
        INSERT INTO dead_letters (source, partner_id, message_id, reason, detail, payload,
                                  created_at)
        SELECT 'relay', partner_id, message_id, ?,
               'outbox seq ' || seq || ', routing key ' || routing_key, body, ?
        FROM outbox WHERE seq = ? AND state = 'pending'
        """,
        (reason, now, seq),
    )
    conn.execute(
        "UPDATE outbox SET state = 'dead', reason = ? WHERE seq = ? AND state = 'pending'",
        (reason, seq),
    )


def dead_letter(
    source: str,
    reason: str,
    detail: str,
    payload: bytes,
    partner_id: str | None,
    message_id: str | None,
    conn: sqlite3.Connection,
    now: float,
) -> int:
    """Keep one dead letter; return its id."""
    cursor = conn.execute(
        """
        INSERT INTO dead_letters (source, partner_id, message_id, reason, detail, payload,
                                  created_at)
        VALUES (?, ?, ?, ?, ?, ?, ?)
        """,
        (source, partner_id, message_id, reason, detail, payload, now),
    )
    return int(cursor.lastrowid or 0)


def save_state(key: str, state: bytes, conn: sqlite3.Connection, now: float) -> None:
    """Insert or replace one actor's persisted state."""
    conn.execute(
        """
        INSERT INTO actor_state (key, state, updated_at) VALUES (?, ?, ?)
        ON CONFLICT (key) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at
        """,
        (key, state, now),
    )
