"""The operator's reads (the console's): each one short statement on the store's read
connection, each bounded; `Store.operator_reads`.

Indexes these use (all already in the schema): `deliveries_pending` (backlog and oldest pending
per partner), `dead_letters_partner` (last error per partner), `outbox.message_id` (UNIQUE:
search by message id), `workflow_threads_correlation` and the primary keys. Three searches have
no index of their own and scan a bounded window instead, newest first: file name
(`received_files.path`) and control number (`edi_interchanges`, `edi_sent_sets.interchange`).
A PO number finds its threads by `workflow_threads_po`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import aiosqlite
import msgspec

from gateway.store.access import Read
from gateway.store.queries import conditions
from gateway.store.workflow_reads import THREAD_COLUMNS, ThreadRow, threads

__all__ = [
    "MAX_SEARCH_SCAN",
    "OperatorReads",
    "PartnerFigures",
    "Read",
]


# Rows a search without an index looks at, newest first: a bound, not a promise to find.
MAX_SEARCH_SCAN = 50_000
# Hits a search lists at most.
MAX_HITS = 50


class PartnerFigures(msgspec.Struct, frozen=True, kw_only=True):
    """What the store says of one partner's outbound side right now."""

    backlog: int
    oldest_pending_at: float | None
    last_error: str | None
    last_error_at: float | None


async def _rows(sql: str, params: Sequence[object], db: aiosqlite.Connection) -> list[Any]:
    return list(await db.execute_fetchall(sql, tuple(params)))


class OperatorReads:
    """The console's queries over `read` (the store's read connection)."""

    def __init__(self, read: Read) -> None:
        self._read = read

    async def _fetch(self, sql: str, *params: object) -> list[Any]:
        return await self._read(partial(_rows, sql, params))

    async def partner_figures(self, partner_id: str) -> PartnerFigures:
        """Backlog, oldest pending delivery and last dead letter of one partner: three seeks."""
        ((count, first_id),) = await self._fetch(
            # Named: the planner otherwise takes deliveries_settled and walks every delivery
            # the partner ever had, not only the pending ones.
            "SELECT count(*), min(id) FROM deliveries INDEXED BY deliveries_pending "
            "WHERE partner_id = ? AND state = 'pending'",
            partner_id,
        )
        oldest = None
        if first_id is not None:
            found = await self._fetch("SELECT created_at FROM deliveries WHERE id = ?", first_id)
            oldest = found[0][0] if found else None
        last = await self._fetch(
            "SELECT reason, created_at FROM dead_letters WHERE partner_id = ? "
            "ORDER BY id DESC LIMIT 1",
            partner_id,
        )
        return PartnerFigures(
            backlog=int(count),
            oldest_pending_at=oldest,
            last_error=last[0][0] if last else None,
            last_error_at=last[0][1] if last else None,
        )

    async def thread(self, thread_id: int) -> ThreadRow | None:
        found = await self._read(
            partial(
                threads,
                f"SELECT {THREAD_COLUMNS} FROM workflow_threads WHERE id = ?",
                (thread_id,),
            )
        )
        return found[0] if found else None

    async def threads_by_correlation(self, correlation_id: str) -> list[ThreadRow]:
        return await self._read(
            partial(
                threads,
                f"SELECT {THREAD_COLUMNS} FROM workflow_threads WHERE correlation_id = ? "
                f"ORDER BY id LIMIT {MAX_HITS}",
                (correlation_id,),
            )
        )

    async def threads_by_po(self, po_number: str) -> list[ThreadRow]:
        """The threads of a PO number, whoever its supplier (one seek on `workflow_threads_po`)."""
        return await self._read(
            partial(
                threads,
                f"SELECT {THREAD_COLUMNS} FROM workflow_threads WHERE po_number = ? "
                f"ORDER BY id LIMIT {MAX_HITS}",
                (po_number,),
            )
        )

    async def correlation_of_message(self, message_id: str) -> str | None:
        """The correlation id of an outbox message (every accepted document and event)."""
        found = await self._fetch(
            "SELECT correlation_id FROM outbox WHERE message_id = ?", message_id
        )
        return found[0][0] if found else None

    async def files_named(self, name: str) -> list[dict[str, Any]]:
        """Received files whose path ends with `name`, newest first, in a bounded window."""
        rows = await self._fetch(
            f"""
            SELECT id, partner_id, channel, path, state, documents, problems, reason,
                   received_at
            FROM (SELECT * FROM received_files ORDER BY id DESC LIMIT {MAX_SEARCH_SCAN})
            WHERE path = ? OR path LIKE ? ESCAPE '\\'
            ORDER BY id DESC LIMIT {MAX_HITS}
            """,
            name,
            "%/" + _like(name),
        )
        keys = ("id", "partner", "channel", "path", "state", "documents", "problems", "reason")
        return [{**dict(zip(keys, r, strict=False)), "received_at": r[8]} for r in rows]

    async def control_numbers(self, number: str) -> list[dict[str, Any]]:
        """Interchanges received and X12 sets sent under a control number (ISA13)."""
        received = await self._fetch(
            f"""
            SELECT partner_id, sender_id, receiver_id, control_number, file_id, received_at
            FROM (SELECT * FROM edi_interchanges ORDER BY received_at DESC
                  LIMIT {MAX_SEARCH_SCAN})
            WHERE control_number = ? LIMIT {MAX_HITS}
            """,
            number,
        )
        sent = await self._fetch(
            f"""
            SELECT partner_id, interchange, transaction_set, document_type, correlation_id,
                   status, sent_at
            FROM (SELECT * FROM edi_sent_sets ORDER BY id DESC LIMIT {MAX_SEARCH_SCAN})
            WHERE interchange = ? LIMIT {MAX_HITS}
            """,
            number,
        )
        hits = [
            {
                "direction": "received",
                "partner": r[0],
                "detail": f"ISA from {r[1]} to {r[2]}, file {r[4]}",
                "correlation_id": None,
                "at": r[5],
            }
            for r in received
        ]
        hits += [
            {
                "direction": "sent",
                "partner": r[0],
                "detail": f"{r[2]} {r[3]} ({r[5]})",
                "correlation_id": r[4],
                "at": r[6],
            }
            for r in sent
        ]
        return hits

    async def open_threads(
        self, *, partner: str | None, before_id: int | None, limit: int
    ) -> list[ThreadRow]:
        """Threads not closed, newest first, one page: the exceptions page decodes them."""
        where, params = conditions(("supplier = ?", partner), ("id < ?", before_id))
        open_ones = " AND ".join(["status != 'closed'", *where])
        return await self._read(
            partial(
                threads,
                f"SELECT {THREAD_COLUMNS} FROM workflow_threads WHERE {open_ones} "
                f"ORDER BY id DESC LIMIT {int(limit)}",
                tuple(params),
            )
        )

    async def delivery_partners_disabled(self) -> dict[str, tuple[float, str | None]]:
        """Endpoints disabled now: partner -> (since, reason)."""
        rows = await self._fetch(
            "SELECT partner_id, disabled_at, reason FROM endpoints WHERE disabled_at IS NOT NULL"
        )
        return {r[0]: (r[1], r[2]) for r in rows}


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
