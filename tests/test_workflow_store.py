"""The store's side of the workflow: one step, one transaction; timers claimed once; cursors."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from delivery_receiver import deliveries_for
from store_samples import acceptance, select

from canonical.delivery import DeliveryAttempt
from gateway.store import NewOutboxRow, Store
from gateway.store.workflow_state import EventRow, JournalEntry, StepRecord

pytestmark = pytest.mark.anyio


def entry(message_id: str, document_type: str = "purchase_order_ack") -> JournalEntry:
    return JournalEntry(
        message_id=message_id,
        document_type=document_type,
        channel="webhook",
        occurred_at=10.0,
        partner_id="acme",
        causation_id=None,
    )


def event(message_id: str, cause: str) -> EventRow:
    return EventRow(
        message_id=message_id,
        partner_id="acme",
        document_type="exception",
        schema_version=1,
        routing_key="exception.acme",
        correlation_id="corr-po",
        causation_id=cause,
        body=b'{"event": "' + message_id.encode() + b'"}',
    )


def step(
    input_id: str,
    version: int,
    *,
    events: tuple[EventRow, ...] = (),
    arm: tuple[tuple[str, float], ...] = (),
    cancel: tuple[str, ...] = (),
    claim: tuple[str, int] | None = None,
    status: str = "acknowledged",
) -> StepRecord:
    return StepRecord(
        supplier="acme",
        po_number="PO-1",
        buyer="distco",
        correlation_id="corr-po",
        status=status,
        state=f"state after {input_id}".encode(),
        expected_version=version,
        input=entry(input_id),
        claim=claim,
        events=events,
        arm=arm,
        cancel=cancel,
    )


async def test_a_step_writes_state_events_journal_and_timers_in_one_go(tmp_path: Path) -> None:
    db = tmp_path / "gw.db"
    async with Store(db) as store:
        result = await store.workflow.apply_step(
            step("ack-1", 0, events=(event("ev-1", "ack-1"),), arm=(("receipt_due", 50.0),))
        )
        thread = await store.workflow.thread("acme", "PO-1")
        pending = await store.pending(10)

    assert (result.outcome, result.version) == ("applied", 1)
    assert thread is not None
    assert (thread.state, thread.version, thread.status) == (
        b"state after ack-1",
        1,
        "acknowledged",
    )
    (row,) = pending
    assert (row.message_id, row.routing_key, row.correlation_id, row.causation_id) == (
        "ev-1",
        "exception.acme",
        "corr-po",
        "ack-1",
    )
    assert select(db, "SELECT message_id, role FROM workflow_journal ORDER BY id") == [
        ("ack-1", "input"),
        ("ev-1", "event"),
    ]
    assert select(db, "SELECT kind, due_at, generation, state FROM workflow_timers") == [
        ("receipt_due", 50.0, 1, "armed")
    ]


async def test_an_input_applied_before_is_a_duplicate_and_writes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "gw.db"
    async with Store(db) as store:
        await store.workflow.apply_step(step("ack-1", 0, events=(event("ev-1", "ack-1"),)))
        again = await store.workflow.apply_step(
            step("ack-1", 1, events=(event("ev-2", "ack-1"),), arm=(("receipt_due", 5.0),))
        )

    assert (again.outcome, again.version) == ("duplicate", 1)
    assert select(db, "SELECT count(*) FROM outbox") == [(1,)]
    assert select(db, "SELECT count(*) FROM workflow_timers") == [(0,)]


async def test_a_step_from_another_version_is_a_conflict_and_writes_nothing(
    tmp_path: Path,
) -> None:
    db = tmp_path / "gw.db"
    async with Store(db) as store:
        await store.workflow.apply_step(step("ack-1", 0))
        stale = await store.workflow.apply_step(step("asn-1", 0, events=(event("ev", "asn-1"),)))
        thread = await store.workflow.thread("acme", "PO-1")

    assert (stale.outcome, stale.version) == ("conflict", 1)
    assert thread is not None
    assert thread.state == b"state after ack-1"
    assert select(db, "SELECT count(*) FROM outbox") == [(0,)]


async def test_a_timer_fires_once_by_generation_and_not_after_a_re_arm(tmp_path: Path) -> None:
    db = tmp_path / "gw.db"
    async with Store(db) as store:
        await store.workflow.apply_step(step("po", 0, arm=(("acknowledgement_due", 5.0),)))
        (due,) = await store.workflow.due(now=6.0, limit=10)
        fired = await store.workflow.apply_step(
            step("timer:acknowledgement_due:1", 1, claim=(due.kind, due.generation))
        )
        again = await store.workflow.apply_step(
            step("timer:acknowledgement_due:1b", 2, claim=(due.kind, due.generation))
        )
        await store.workflow.apply_step(step("change", 2, arm=(("acknowledgement_due", 9.0),)))
        old = await store.workflow.apply_step(
            step("timer:old", 3, claim=("acknowledgement_due", due.generation))
        )
        left = await store.workflow.due(now=100.0, limit=10)

    assert (due.supplier, due.po_number, due.kind, due.generation) == (
        "acme",
        "PO-1",
        "acknowledgement_due",
        1,
    )
    assert (fired.outcome, again.outcome, old.outcome) == ("applied", "stale", "stale")
    assert [(t.due_at, t.generation) for t in left] == [(9.0, 2)]


async def test_cancelled_timers_are_not_due_and_the_earliest_armed_one_is_next(
    tmp_path: Path,
) -> None:
    async with Store(tmp_path / "gw.db") as store:
        assert await store.workflow.next_due() is None
        await store.workflow.apply_step(
            step("po", 0, arm=(("shipment_due", 30.0), ("receipt_due", 40.0)))
        )
        await store.workflow.apply_step(step("asn", 1, cancel=("shipment_due",)))
        next_due = await store.workflow.next_due()
        due = await store.workflow.due(now=35.0, limit=10)
        overdue = await store.workflow.overdue_timers(now=45.0)

    assert next_due == 40.0
    assert due == []
    assert overdue == 1


async def test_a_cursor_only_moves_forward(tmp_path: Path) -> None:
    async with Store(tmp_path / "gw.db") as store:
        assert await store.workflow.cursor("outbox") is None
        await store.workflow.save_cursor("outbox", 7)
        await store.workflow.save_cursor("outbox", 3)
        assert await store.workflow.cursor("outbox") == 7


async def test_a_scan_reads_past_rows_no_thread_takes_but_no_further_than_its_window(
    tmp_path: Path,
) -> None:
    async with Store(tmp_path / "gw.db") as store:
        for key in range(5):
            await store.accept(acceptance(f"k{key}", partner="acme"))  # partners' orders
        found, reached = await store.workflow.committed_inputs(
            0,
            10,
            scan=3,
            erp_source="erp",
            order_types=("purchase_order",),
            partner_types=("purchase_order_ack",),
        )

    assert (found, reached) == ([], 3)


async def test_committed_inputs_are_the_erps_orders_and_the_partners_documents(
    tmp_path: Path,
) -> None:
    async with Store(tmp_path / "gw.db") as store:
        for key, partner, document in [
            ("1", "erp", "purchase_order"),
            ("2", "acme", "purchase_order"),  # a customer's order: not a thread's input
            ("3", "acme", "purchase_order_ack"),
            ("4", "erp", "item_master"),
            ("5", "globex", "goods_receipt"),
        ]:
            row = NewOutboxRow(
                message_id=f"m-{key}",
                document_type=document,
                schema_version=1,
                routing_key=f"{document}.{partner}",
                correlation_id=f"c-{key}",
                causation_id=None,
                body=b"{}",
            )
            await store.accept(
                msgspec.structs.replace(acceptance(key, partner=partner), records=(row,))
            )
        found, reached = await store.workflow.committed_inputs(
            0,
            10,
            scan=100,
            erp_source="erp",
            order_types=("purchase_order",),
            partner_types=("purchase_order_ack", "goods_receipt"),
        )
        after, _ = await store.workflow.committed_inputs(
            found[1].seq,
            10,
            scan=100,
            erp_source="erp",
            order_types=("purchase_order",),
            partner_types=("purchase_order_ack", "goods_receipt"),
        )

    assert [(f.partner_id, f.document_type) for f in found] == [
        ("erp", "purchase_order"),
        ("acme", "purchase_order_ack"),
        ("globex", "goods_receipt"),
    ]
    assert [f.document_type for f in after] == ["goods_receipt"]
    assert reached == 5  # past the rows no thread takes, too


async def test_settled_deliveries_are_listed_once_by_their_last_attempt(tmp_path: Path) -> None:
    def attempt(status: int) -> DeliveryAttempt:
        return DeliveryAttempt(attempted_at=1.0, status=status, latency_s=0.1, response_head=b"")

    async with Store(tmp_path / "gw.db") as store:
        await store.accept(deliveries_for("acme", ["PO-1", "PO-2", "PO-3"]))
        one, two, three = await store.deliveries.deliveries(partner_id="acme")
        await store.deliveries.settle(one.id, attempt(500), "retry", next_attempt_at=2.0)
        await store.deliveries.settle(two.id, attempt(500), "retry", next_attempt_at=2.0)
        await store.deliveries.settle(one.id, attempt(200), "delivered")
        await store.deliveries.settle(three.id, attempt(500), "dead", reason="HTTP 500")
        settled, _ = await store.workflow.settled_deliveries(0, 10, ("purchase_order",), scan=100)
        later, reached = await store.workflow.settled_deliveries(
            settled[-1].attempt_id, 10, ("purchase_order",), scan=100
        )

    assert [(s.delivery_id, s.state) for s in settled] == [
        (one.id, "delivered"),
        (three.id, "dead"),
    ]
    assert settled[1].reason == "HTTP 500"
    assert later == []
    assert reached == 4
