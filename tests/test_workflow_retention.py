"""Retention of the workflow tables: closed threads go whole, old journal rows go, open stay."""

from __future__ import annotations

from pathlib import Path

import pytest
from store_samples import Clock, select

from gateway.store import Retention, Store
from gateway.store.workflow_state import JournalEntry, StepRecord

pytestmark = pytest.mark.anyio

DAY = 86400.0


def step(
    po: str, input_id: str, version: int, status: str, *, arm: float | None = None
) -> StepRecord:
    return StepRecord(
        supplier="acme",
        po_number=po,
        buyer="distco",
        correlation_id=f"corr-{po}",
        status=status,
        state=b"state",
        expected_version=version,
        input=JournalEntry(
            message_id=input_id,
            document_type="purchase_order",
            channel="amqp",
            occurred_at=0.0,
            partner_id="erp",
        ),
        arm=(("receipt_due", arm),) if arm is not None else (),
    )


def counts(db: Path) -> dict[str, list[tuple[object, ...]]]:
    return {
        table: select(
            db,
            f"SELECT DISTINCT t.po_number FROM {table} AS x JOIN workflow_threads"
            " AS t ON t.id = x.thread_id ORDER BY 1",
        )
        for table in ("workflow_journal", "workflow_timers")
    } | {"workflow_threads": select(db, "SELECT po_number FROM workflow_threads ORDER BY 1")}


async def test_closed_threads_past_retention_go_with_their_journal_and_timers(
    tmp_path: Path,
) -> None:
    db = tmp_path / "gw.db"
    clock = Clock()
    retention = Retention(closed_threads_s=30 * DAY)
    async with Store(db, clock=clock, retention=retention, purge_chunk=2) as store:
        ledger = store.workflow
        for po in ("PO-OLD-CLOSED", "PO-OLD-OPEN", "PO-NEW-CLOSED"):
            await ledger.apply_step(step(po, f"{po}:order", 0, "released", arm=clock.now + DAY))
        await ledger.apply_step(step("PO-OLD-CLOSED", "PO-OLD-CLOSED:close", 1, "closed"))
        clock.now += 40 * DAY
        await ledger.apply_step(step("PO-NEW-CLOSED", "PO-NEW-CLOSED:close", 1, "closed"))
        report = await store.purge()

    kept = ["PO-NEW-CLOSED", "PO-OLD-OPEN"]
    assert counts(db) == {
        "workflow_threads": [(po,) for po in kept],
        "workflow_journal": [(po,) for po in kept],
        "workflow_timers": [(po,) for po in kept],
    }
    assert report.removed == {"workflow_threads": 1, "workflow_journal": 2, "workflow_timers": 1}


async def test_journal_rows_past_retention_go_and_recent_ones_stay(tmp_path: Path) -> None:
    db = tmp_path / "gw.db"
    clock = Clock()
    async with Store(db, clock=clock, retention=Retention(journal_s=30 * DAY)) as store:
        await store.workflow.apply_step(step("PO-1", "old", 0, "released"))
        clock.now += 40 * DAY
        await store.workflow.apply_step(step("PO-1", "recent", 1, "acknowledged"))
        report = await store.purge()
        replay = await store.workflow.apply_step(step("PO-1", "recent", 2, "acknowledged"))

    assert select(db, "SELECT message_id FROM workflow_journal") == [("recent",)]
    assert select(db, "SELECT status FROM workflow_threads") == [("acknowledged",)]
    assert report.removed == {"workflow_journal": 1}
    assert replay.outcome == "duplicate"  # a recent mark still answers a replay


async def test_without_workflow_limits_no_workflow_row_is_purged(tmp_path: Path) -> None:
    db = tmp_path / "gw.db"
    clock = Clock()
    async with Store(db, clock=clock, retention=Retention(outbox_s=DAY)) as store:
        await store.workflow.apply_step(step("PO-1", "order", 0, "released"))
        await store.workflow.apply_step(step("PO-1", "close", 1, "closed"))
        clock.now += 400 * DAY
        await store.purge()

    assert select(db, "SELECT count(*) FROM workflow_journal") == [(2,)]
    assert select(db, "SELECT count(*) FROM workflow_threads") == [(1,)]
