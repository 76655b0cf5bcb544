"""Inventory positions on a real store, without HTTP or a broker: the read model's reader,
passivation and rehydration, and a step's consumed mark."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

import anyio
import msgspec
import pytest
from prometheus_client import CollectorRegistry
from workflow_kit import ManualClock, commit_to

from actors.runtime import InMemoryDeadLetters, RuntimeConfig, Supervisor
from canonical.availability import Availability
from canonical.inventory import InventoryDelta
from gateway.config.inventory import InventorySettings
from gateway.inventory import Inventory, InventoryMetrics
from gateway.store import Retention, Store
from gateway.store.inventory import MAX_SKUS, PositionStep, TooManySkus

pytestmark = pytest.mark.anyio

D = Decimal
T0 = dt.datetime(2026, 3, 2, 6, tzinfo=dt.UTC)
SETTINGS = InventorySettings(passivate_after_s=0.05, feed_poll_s=0.05, publish_interval_s=0)
RUNTIME = RuntimeConfig(
    backoff_initial_s=0.001, backoff_max_s=0.01, passivate_after_s=0.05, shutdown_deadline_s=5.0
)


def delta(sku: str, seq: int, on_hand: int, location: str = "DC-EAST") -> InventoryDelta:
    return InventoryDelta(
        delta_id=f"{sku}-{location}-{seq}",
        sequence=seq,
        sku=sku,
        location_id=location,
        uom="EA",
        occurred_at=T0 + dt.timedelta(minutes=seq),
        reason="receipt",
        on_hand=D(on_hand),
        available=D(on_hand),
    )


@asynccontextmanager
async def positions(db: Path) -> AsyncIterator[tuple[Store, Inventory]]:
    clock = ManualClock(time.time())
    async with Store(db, clock=clock) as store, anyio.create_task_group() as tg:
        async with Supervisor(RUNTIME, dead_letters=InMemoryDeadLetters()) as supervisor:
            metrics = InventoryMetrics(CollectorRegistry())
            inventory = Inventory(SETTINGS, store, supervisor, metrics, clock=clock)
            await tg.start(inventory.run)
            try:
                yield store, inventory
            finally:
                tg.cancel_scope.cancel()


async def commit(store: Store, inventory: Inventory, *documents: InventoryDelta) -> None:
    for document in documents:
        await commit_to(store, document, "wms")
    top = await store.inventory.outbox_top()
    inventory.feeder.wake()
    with anyio.fail_after(10):
        while inventory.feeder.position < top:
            await anyio.sleep(0.02)


async def test_the_reader_answers_the_skus_asked_at_one_location_or_all(tmp_path: Path) -> None:
    async with positions(tmp_path / "gw.db") as (store, inventory):
        await commit(
            store,
            inventory,
            delta("A", 1, 5),
            delta("A", 1, 7, location="DC-WEST"),
            delta("B", 1, 3),
            delta("C", 1, 9),
        )
        everywhere = await store.inventory.availability(["A", "B", "UNKNOWN"])
        east = await store.inventory.availability(["A", "B"], "DC-EAST")

    assert [(a.sku, a.location_id, a.on_hand) for a in everywhere] == [
        ("A", "DC-EAST", D(5)),
        ("A", "DC-WEST", D(7)),
        ("B", "DC-EAST", D(3)),
    ]
    assert [(a.sku, a.available) for a in east] == [("A", D(5)), ("B", D(3))]
    assert all(a.as_of == T0 + dt.timedelta(minutes=1) for a in everywhere)


async def test_the_pre_encoded_read_sends_the_stored_rows_and_sees_later_commits(
    tmp_path: Path,
) -> None:
    async with positions(tmp_path / "gw.db") as (store, inventory):
        await commit(store, inventory, delta("A", 1, 5), delta("A", 1, 7, location="DC-WEST"))
        first = await store.inventory.availability_json(["A", "UNKNOWN"])
        decoded = await store.inventory.availability(["A", "UNKNOWN"])
        # A from the cache beside SKUs read from the store.
        threaded = await store.inventory.availability_json(["A", *(f"NONE-{n}" for n in range(20))])
        # The cached connection reads what is committed after it opened.
        await commit(store, inventory, delta("A", 2, 4))
        (later,) = await store.inventory.availability_json(["A"], "DC-EAST")

    assert [msgspec.json.decode(body, type=Availability) for *_, body in first] == decoded
    assert [(sku, location, as_of) for sku, location, as_of, _ in first] == [
        (a.sku, a.location_id, a.as_of) for a in decoded
    ]
    assert threaded == first
    assert later[:2] == ("A", "DC-EAST")
    assert msgspec.json.decode(later[3], type=Availability).on_hand == D(9)


async def test_a_sku_read_before_any_position_knows_it_is_answered_once_one_does(
    tmp_path: Path,
) -> None:
    async with positions(tmp_path / "gw.db") as (store, inventory):
        before = await store.inventory.availability_json(["NEW"])  # held as unknown
        await commit(store, inventory, delta("NEW", 1, 3))
        after = await store.inventory.availability_json(["NEW"])
        fresh = await Store(tmp_path / "gw.db").__aenter__()
        try:
            from_disk = await fresh.inventory.availability_json(["NEW"])
        finally:
            await fresh.__aexit__(None, None, None)

    assert before == []
    assert after == from_disk
    assert [msgspec.json.decode(body, type=Availability).on_hand for *_, body in after] == [D(3)]


@pytest.mark.parametrize("read", ["availability", "availability_json"])
async def test_the_reader_refuses_more_than_its_bound(tmp_path: Path, read: str) -> None:
    async with Store(tmp_path / "gw.db") as store:
        with pytest.raises(TooManySkus):
            await getattr(store.inventory, read)([f"SKU-{n}" for n in range(MAX_SKUS + 1)])


async def test_an_idle_position_is_passivated_and_rehydrated_from_the_store(
    tmp_path: Path,
) -> None:
    async with positions(tmp_path / "gw.db") as (store, inventory):
        await commit(store, inventory, delta("P", 1, 10))
        with anyio.fail_after(10):
            while inventory.registry.statistics().passivated < 1:
                await anyio.sleep(0.02)
        # Only a position that remembers sequence 1 (from the store) applies 2 at once.
        await commit(store, inventory, delta("P", 2, 4))
        (row,) = await store.inventory.availability(["P"])

    assert row.on_hand == D(14)


async def test_a_step_whose_input_was_consumed_writes_nothing(tmp_path: Path) -> None:
    step = PositionStep(
        sku="S",
        location_id="L",
        expected_version=0,
        message_id="m-1",
        state=b"{}",
        label="in_step",
        due_at=None,
    )
    async with Store(tmp_path / "gw.db") as store:
        first = await store.inventory.apply_step(step)
        again = await store.inventory.apply_step(step)
        moved = await store.inventory.apply_step(msgspec.structs.replace(step, message_id="m-2"))

    assert (first, again, moved) == (("applied", 1), ("duplicate", 1), ("conflict", 1))


async def test_retention_takes_the_old_consumed_marks_and_keeps_the_young(tmp_path: Path) -> None:
    clock = ManualClock(1_000.0)
    retention = Retention(inventory_s=25.0)
    async with Store(tmp_path / "gw.db", clock=clock, retention=retention) as store:
        for n in range(5):
            await store.inventory.apply_step(
                PositionStep(
                    sku="S",
                    location_id="L",
                    expected_version=n,
                    message_id=f"m-{n}",
                    state=b"{}",
                    label="in_step",
                    due_at=None,
                )
            )
            clock.advance(10)
        report = await store.purge()  # at 1050: marks written before 1025 go
        replayed = await store.inventory.apply_step(
            PositionStep(
                sku="S",
                location_id="L",
                expected_version=5,
                message_id="m-4",
                state=b"{}",
                label="in_step",
                due_at=None,
            )
        )

    # Marks written at 1000, 1010 and 1020 go; 1030 and 1040 stay.
    assert report.removed == {"inventory_consumed": 3}
    assert replayed == ("duplicate", 5)
