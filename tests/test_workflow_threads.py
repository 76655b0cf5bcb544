"""The threads hosted on the runtime over a real store: fed what was committed, timers fired."""

from __future__ import annotations

import contextlib
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from workflow_documents import T0, ack, asn, invoice, order, receipt
from workflow_kit import ManualClock, Running, commit_to, gateway_config, workflow

from actors.runtime import RuntimeConfig
from actors.workflow.feeder import WorkflowFeeder
from canonical import InvoiceMatch, ReceiptDiscrepancy
from gateway.config import GatewayConfig
from gateway.config.workflow import RuleSettings, WorkflowSettings
from gateway.store import Store

pytestmark = pytest.mark.anyio

D = Decimal
HOUR = 3600.0
PO = order(1)


def config(**rules: float) -> GatewayConfig:
    settings = WorkflowSettings(rules=RuleSettings(**rules), feed_poll_s=0.05)  # type: ignore[arg-type]
    return gateway_config(settings)


def armed(running: Running, kind: str) -> bool:
    return bool(
        running.rows(f"SELECT 1 FROM workflow_timers WHERE kind = '{kind}' AND state = 'armed'")
    )


async def test_a_thread_applies_its_documents_and_emits_events_with_its_ids(
    tmp_path: Path,
) -> None:
    async with workflow(tmp_path / "gw.db", config(), ManualClock(T0)) as running:
        await running.commit(PO, "erp")
        ack_id = await running.commit(ack(PO, quantities={1: D(20)}), "acme")
        await running.commit(asn("ASN-1", PO, {1: D(12), 2: D(10)}), "acme")
        await running.commit(asn("ASN-2", PO, {2: D(14)}), "acme")
        await running.commit(
            receipt("GR-1", PO, {1: (D(12), D(12)), 2: (D(10), D(9))}, asn_number="ASN-1"),
            "globex",
        )
        await running.commit(invoice("INV-1", PO, {1: (D(12), D("4.99"))}), "acme")
        await running.until(lambda: bool(running.events("invoice_match")))
        events = running.events()
        ((correlation, status),) = running.rows(
            "SELECT correlation_id, status FROM workflow_threads"
        )

    assert [e.document_type for e in events if e.document_type != "purchase_order_status"] == [
        "exception",
        "inbound_shipment",
        "inbound_shipment",
        "receipt_discrepancy",
        "invoice_match",
    ]
    assert running.exception_kinds() == ["quantity_discrepancy"]
    assert events[0].causation_id == ack_id
    assert {e.correlation_id for e in events} == {correlation}
    assert {e.routing_key for e in []} == set()
    (discrepancy,) = [e.document for e in events if isinstance(e.document, ReceiptDiscrepancy)]
    assert discrepancy.lines[0].short_quantity == D(1)
    (match,) = [e.document for e in events if isinstance(e.document, InvoiceMatch)]
    assert match.result == "held"
    assert status == "invoiced"


async def test_a_replayed_feed_changes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "gw.db"
    async with workflow(db, config(), ManualClock(T0)) as running:
        await running.commit(PO, "erp")
        await running.commit(ack(PO, rejected=(1,)), "acme")
        await running.until(lambda: running.exception_kinds() == ["rejected_line"])
        before = running.rows("SELECT count(*) FROM outbox")
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE workflow_cursors SET position = 0")  # read again from the start
    ((top,),) = running.rows("SELECT max(seq) FROM outbox")
    async with workflow(db, config(), ManualClock(T0)) as running:
        await running.until(lambda: running.workflow.feeder.positions.get("documents", 0) >= top)

    assert running.workflow.feeder.applied == 0
    assert running.rows("SELECT count(*) FROM outbox") == before


async def test_no_acknowledgement_within_the_sla_raises_exactly_one_late_acknowledgement(
    tmp_path: Path,
) -> None:
    db = tmp_path / "gw.db"
    clock = ManualClock(T0)
    async with workflow(db, config(ack_sla_hours=2), clock) as running:
        await running.commit(PO, "erp")
        await running.until(lambda: armed(running, "shipment_due"))
        await running.deliver(PO.po_number, at=T0)  # the SLA starts: the order reached acme
        await running.until(lambda: armed(running, "acknowledgement_due"))
        clock.advance(HOUR)
        clock.advance(2 * HOUR)
        await running.until(lambda: running.exception_kinds() == ["late_acknowledgement"])
        clock.advance(HOUR)
        await running.until(lambda: running.workflow.timers.fired == 1)
    async with workflow(db, config(ack_sla_hours=2), clock) as running:
        clock.advance(HOUR)
        await running.until(lambda: not armed(running, "acknowledgement_due"))

    assert running.exception_kinds() == ["late_acknowledgement"]


async def test_an_overdue_timer_fires_at_once_on_start(tmp_path: Path) -> None:
    db = tmp_path / "gw.db"
    async with workflow(db, config(ack_sla_hours=1), ManualClock(T0)) as running:
        await running.commit(PO, "erp")
        await running.until(lambda: armed(running, "shipment_due"))
        await running.deliver(PO.po_number, at=T0)
        await running.until(lambda: armed(running, "acknowledgement_due"))
    # Down for two hours: the timer came due meanwhile and fires as the service starts.
    async with workflow(db, config(ack_sla_hours=1), ManualClock(T0 + 2 * HOUR)) as running:
        await running.until(lambda: running.exception_kinds() == ["late_acknowledgement"])


async def test_an_acknowledgement_before_its_order_waits_then_is_applied(tmp_path: Path) -> None:
    async with workflow(tmp_path / "gw.db", config(), ManualClock(T0)) as running:
        await running.commit(ack(PO, quantities={1: D(20)}), "acme")
        await running.until(lambda: armed(running, "park_expiry"))
        assert running.exception_kinds() == []
        await running.commit(PO, "erp")
        await running.until(lambda: running.exception_kinds() == ["quantity_discrepancy"])
        assert not armed(running, "park_expiry")


async def test_an_input_for_an_order_that_never_comes_is_an_exception_after_the_park_time(
    tmp_path: Path,
) -> None:
    clock = ManualClock(T0)
    async with workflow(tmp_path / "gw.db", config(park_hours=1), clock) as running:
        await running.commit(asn("ASN-1", PO, {1: D(12)}), "acme")
        await running.until(lambda: armed(running, "park_expiry"))
        clock.advance(2 * HOUR)
        await running.until(lambda: running.exception_kinds() == ["unknown_purchase_order"])


async def test_an_idle_thread_is_passivated_and_rehydrated_from_the_store(tmp_path: Path) -> None:
    cfg = gateway_config(WorkflowSettings(passivate_after_s=0.05, feed_poll_s=0.05))
    runtime = RuntimeConfig(passivate_after_s=0.05, shutdown_deadline_s=5.0)
    async with workflow(tmp_path / "gw.db", cfg, ManualClock(T0), runtime) as running:
        await running.commit(PO, "erp")
        await running.until(lambda: running.workflow.registry.statistics().passivated >= 1)
        await running.commit(asn("ASN-1", PO, {1: D(13)}), "acme")
        # Only a thread that remembers the order (from the store) knows 13 is over 12.
        await running.until(lambda: "over_shipment" in running.exception_kinds())


async def test_an_asn_for_two_orders_feeds_both_threads(tmp_path: Path) -> None:
    other = order(2)
    async with workflow(tmp_path / "gw.db", config(), ManualClock(T0)) as running:
        await running.commit(PO, "erp")
        await running.commit(other, "erp")
        both = asn(
            "ASN-1",
            PO,
            {1: D(12)},
            more_orders=((other.po_number, {2: D(24)}),),
            skus={2: other.lines[1].sku},  # the other order's line 2
        )
        await running.commit(both, "acme")
        await running.until(lambda: len(running.events("inbound_shipment")) == 2)
        events = running.events("inbound_shipment")

    assert {e.document.po_number for e in events} == {PO.po_number, other.po_number}  # type: ignore[union-attr]
    assert len({e.correlation_id for e in events}) == 2


async def test_an_asn_before_the_ack_and_a_receipt_before_its_asn_end_where_in_order_would(
    tmp_path: Path,
) -> None:
    async with workflow(tmp_path / "gw.db", config(), ManualClock(T0)) as running:
        await running.commit(PO, "erp")
        await running.commit(receipt("GR-1", PO, {1: (D(12), D(12))}, asn_number="ASN-1"), "globex")
        await running.until(lambda: armed(running, "park_expiry"))  # the receipt waits
        await running.commit(asn("ASN-1", PO, {1: D(12)}), "acme")  # before the ack
        await running.commit(ack(PO), "acme")
        await running.until(
            lambda: running.rows("SELECT status FROM workflow_threads") == [("received",)]
        )
        documents = [e.document_type for e in running.events()]

    assert running.exception_kinds() == ["shipped_before_acknowledged"]
    assert "receipt_discrepancy" not in documents  # received exactly what was shipped
    assert not armed(running, "park_expiry")


async def test_threads_turned_on_over_a_store_with_history_start_from_now(
    tmp_path: Path,
) -> None:
    db = tmp_path / "gw.db"
    async with Store(db) as store:  # a gateway that ran before the threads existed
        await commit_to(store, order(7), "erp")
    async with workflow(db, config(), ManualClock(T0)) as running:
        await running.commit(PO, "erp")
        await running.until(lambda: bool(running.rows("SELECT 1 FROM workflow_threads")))
        threads = running.rows("SELECT po_number FROM workflow_threads")

    assert threads == [(PO.po_number,)]


async def test_the_sampled_gauges_count_threads_by_status_and_overdue_timers(
    tmp_path: Path,
) -> None:
    clock = ManualClock(T0)
    async with workflow(tmp_path / "gw.db", config(), clock) as running:
        await running.commit(PO, "erp")
        await running.until(lambda: armed(running, "shipment_due"))
        await running.workflow.sample()
        first = running.metrics.summary()
        await running.commit(ack(PO), "acme")
        await running.until(
            lambda: running.rows("SELECT status FROM workflow_threads") == [("acknowledged",)]
        )
        clock.now += 30 * 24 * HOUR  # past every deadline, with the timer service asleep
        await running.workflow.sample()
        later = running.metrics.summary()

    assert first["gateway_workflow_threads{status=released}"] == 1
    assert first["gateway_workflow_overdue_timers"] == 0
    assert later["gateway_workflow_threads{status=released}"] == 0
    assert later["gateway_workflow_threads{status=acknowledged}"] == 1
    assert later["gateway_workflow_overdue_timers"] == 2  # shipment and receipt due


def acknowledgement_due(running: Running) -> list[tuple[object, ...]]:
    return running.rows(
        "SELECT due_at FROM workflow_timers WHERE kind = 'acknowledgement_due' AND state = 'armed'"
    )


async def test_a_changed_sla_re_times_the_armed_timers_on_start(tmp_path: Path) -> None:
    db = tmp_path / "gw.db"
    clock = ManualClock(T0)
    async with workflow(db, config(ack_sla_hours=48), clock) as running:
        await running.commit(PO, "erp")
        await running.until(lambda: armed(running, "shipment_due"))
        await running.deliver(PO.po_number, at=T0)
        await running.until(lambda: armed(running, "acknowledgement_due"))
        ((armed_at_48,),) = acknowledgement_due(running)
        shipment = running.rows("SELECT due_at FROM workflow_timers WHERE kind = 'shipment_due'")
    async with workflow(db, config(ack_sla_hours=24), clock) as running:
        moved = acknowledgement_due(running)
        unmoved = running.rows("SELECT due_at FROM workflow_timers WHERE kind = 'shipment_due'")
        clock.advance(armed_at_48 - 24 * HOUR - T0)  # type: ignore[operator]
        await running.until(lambda: running.exception_kinds() == ["late_acknowledgement"])

    assert moved == [(armed_at_48 - 24 * HOUR,)]  # type: ignore[operator]
    assert unmoved == shipment


async def test_a_restart_under_the_same_deadlines_after_a_change_moves_nothing_again(
    tmp_path: Path,
) -> None:
    db = tmp_path / "gw.db"
    clock = ManualClock(T0)
    async with workflow(db, config(ack_sla_hours=48), clock) as running:
        await running.commit(PO, "erp")
        await running.until(lambda: armed(running, "shipment_due"))
        await running.deliver(PO.po_number, at=T0)
        await running.until(lambda: armed(running, "acknowledgement_due"))
    async with workflow(db, config(ack_sla_hours=24), clock) as running:
        first = acknowledgement_due(running)
    async with workflow(db, config(ack_sla_hours=24), clock) as running:
        again = acknowledgement_due(running)
        moved = await running.workflow.retime_timers()

    assert again == first
    assert moved == 0


async def test_a_crashed_feeder_is_restarted_by_the_supervisor_and_the_thread_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crashes: list[int] = []
    original = WorkflowFeeder._pass

    async def crashing_once(feeder: WorkflowFeeder, positions: dict[str, int]) -> bool:
        if not crashes:
            crashes.append(1)
            raise RuntimeError("feeder bug")
        return await original(feeder, positions)

    monkeypatch.setattr(WorkflowFeeder, "_pass", crashing_once)
    async with workflow(tmp_path / "gw.db", config(), ManualClock(T0)) as running:
        await running.commit(PO, "erp")
        await running.commit(ack(PO, quantities={1: D(20)}), "acme")
        # The first pass crashed before reading anything; the restarted feeder fed both.
        await running.until(lambda: running.exception_kinds() == ["quantity_discrepancy"])
    assert crashes == [1]
