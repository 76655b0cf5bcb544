"""X12 writes in the store: each a function of (connection, now), bound with
`functools.partial` and pickled to the writer process, where it runs inside a group commit.

`finish_x12_file` commits an X12 file with what it changes (keys, acks numbered from the
partner's sequences, 997s applied); `queue_interchange` writes an outbound interchange;
`mark_put` and `flag_sets` keep the rest (the store's purge deletes what is done with:
gateway/store/retention.py). `EdiLedger` (gateway/store/edi.py)
is how the gateway calls them. An `X12Error` never escapes one: it would stop the writer.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Sequence
from typing import Literal

import msgspec
from msgspec import Struct

from canonical.documents import Document
from canonical.files import FileRow
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
from gateway.store.files import finish_file, queue_rows

__all__ = [
    "MAX_CONTROL_NUMBER",
    "Unwritable",
    "finish_x12_file",
    "flag_sets",
    "key_values",
    "mark_put",
    "queue_interchange",
    "reserve_numbers",
]

# ISA13 and GS06 are at most nine digits; a sequence wraps to 1 past it.
MAX_CONTROL_NUMBER = 999_999_999

SequenceKind = Literal["interchange", "group"]


class Unwritable(Struct, frozen=True, kw_only=True):
    """Documents X12 cannot carry (a value with a delimiter, a type with no set): why."""

    detail: str


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
            [(partner_id, *key_values(key), file_id, now) for key in answers.keys],
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
    queue_rows(found[0][0], rows, conn, now)


def key_values(key: InterchangeKey) -> tuple[str, ...]:
    return (
        key.sender_qualifier,
        key.sender_id,
        key.receiver_qualifier,
        key.receiver_id,
        key.control_number,
    )
