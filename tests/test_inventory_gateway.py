"""Inventory positions through the running gateway, against the real RabbitMQ node.

A warehouse posts `inventory_delta` and `inventory_position` documents as signed webhooks;
the positions apply what was committed; each case asserts the position (its state in the
store), the availability read model (`store.inventory.availability`) and the events on a
queue bound to the events exchange. The gateway's clock is moved by hand past the gap hold.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aio_pika
import anyio
import httpx
import pytest
from gatewaykit import Partner, bound_queue, drain, load, write_config
from test_erp_ingress_gateway import until
from workflow_kit import ManualClock

from actors.inventory.state import PositionState, decode_state
from canonical import Document, decode_envelope, document_type_of, encode_document
from canonical.availability import Availability
from canonical.events import AvailabilityChanged, InventoryDrift
from canonical.inventory import InventoryDelta, InventoryPosition
from canonical.notices import ExceptionNotice
from gateway.app import Gateway

pytestmark = [pytest.mark.anyio, pytest.mark.rabbitmq]

D = Decimal
WMS = Partner("wms")
LOCATION = "DC-EAST"
T0 = dt.datetime(2026, 3, 2, 6, tzinfo=dt.UTC)
HOLD_S = 60.0


def delta(
    sku: str, seq: int, on_hand: int, *, allocated: int = 0, minute: int | None = None
) -> InventoryDelta:
    return InventoryDelta(
        delta_id=f"{sku}-d{seq}",
        sequence=seq,
        sku=sku,
        location_id=LOCATION,
        uom="EA",
        occurred_at=T0 + dt.timedelta(minutes=seq if minute is None else minute),
        reason="adjustment",
        on_hand=D(on_hand),
        allocated=D(allocated),
        available=D(on_hand - allocated),
    )


def snapshot(sku: str, on_hand: int, *, minute: int) -> InventoryPosition:
    return InventoryPosition(
        sku=sku,
        location_id=LOCATION,
        uom="EA",
        as_of=T0 + dt.timedelta(minutes=minute),
        on_hand=D(on_hand),
        available=D(on_hand),
    )


@dataclass
class Warehouse:
    """The running gateway, the warehouse's HTTP client, and the events queue."""

    gateway: Gateway
    http: httpx.AsyncClient
    queue: aio_pika.abc.AbstractQueue
    clock: ManualClock
    posted: int = 0
    seen: list[Document] = field(default_factory=list)

    async def post(self, document: Document) -> None:
        body = encode_document(document)
        response = await self.http.post(
            f"/webhooks/{WMS.id}/{document_type_of(document)}",
            content=body,
            headers=WMS.headers(body),
        )
        assert response.status_code == 202, response.text
        self.posted += 1

    async def applied(self) -> None:
        """Return once the positions took every document posted (applied or set aside)."""
        inventory = self.gateway.inventory
        assert inventory is not None
        store = self.gateway.store
        assert store is not None
        top = await store.inventory.outbox_top()
        await until(lambda: inventory.feeder.position >= top)

    async def events(self, expect: int) -> list[Document]:
        got = [decode_envelope(m.body).document for m in await drain(self.queue, expect=expect)]
        self.seen += got
        return got

    async def state(self, sku: str) -> PositionState:
        store = self.gateway.store
        assert store is not None
        row = await store.inventory.position(sku, LOCATION)
        assert row is not None
        return decode_state(row.state)

    async def read_model(self, sku: str) -> Availability:
        store = self.gateway.store
        assert store is not None
        (row,) = await store.inventory.availability([sku], LOCATION)
        return row


@asynccontextmanager
async def warehouse(
    tmp_path: Path, amqp_url: str, *, publish_interval_s: float = 0
) -> AsyncIterator[Warehouse]:
    extra = (
        f"[inventory]\npublish_interval_s = {publish_interval_s}\ngap_hold_s = {HOLD_S}\n"
        "feed_poll_s = 0.05\n"
    )
    path = write_config(
        tmp_path,
        amqp_url,
        [WMS],
        extra=extra,
        documents='["inventory_delta", "inventory_position"]',
    )
    clock = ManualClock(time.time())
    gateway = Gateway(load(path), clock=clock)
    async with (
        bound_queue(amqp_url, f"test.inventory.{uuid.uuid4().hex[:8]}", "*.inventory") as queue,
        anyio.create_task_group() as tg,
    ):
        await tg.start(gateway.run)
        http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.http_port}", timeout=10)
        try:
            async with http:
                yield Warehouse(gateway, http, queue, clock)
        finally:
            gateway.stop()


def of(kind: type, documents: list[Document]) -> list[Any]:
    return [d for d in documents if isinstance(d, kind)]


async def test_deltas_out_of_order_apply_in_sequence(tmp_path: Path, amqp_url: str) -> None:
    async with warehouse(tmp_path, amqp_url) as w:
        for seq, amount in ((3, -2), (1, 10), (2, 5)):
            await w.post(delta("SKU-ORDER", seq, amount))
        await w.applied()
        state = await w.state("SKU-ORDER")
        row = await w.read_model("SKU-ORDER")
        events = await w.events(expect=2)

    assert (state.last_sequence, state.buckets.on_hand, state.held) == (3, D(13), ())
    assert (row.on_hand, row.available, row.needs_snapshot) == (D(13), D(13), False)
    # Delta 3 was held: one event when 1 applied, one when 2 and then 3 applied.
    assert [e.on_hand for e in of(AvailabilityChanged, events)] == [D(10), D(13)]


async def test_a_duplicated_delta_is_applied_once(tmp_path: Path, amqp_url: str) -> None:
    async with warehouse(tmp_path, amqp_url) as w:
        for seq, amount in ((1, 10), (1, 10), (2, 4), (1, 10)):
            await w.post(delta("SKU-DUP", seq, amount))
        await w.applied()
        state = await w.state("SKU-DUP")
        row = await w.read_model("SKU-DUP")
        events = await w.events(expect=2)

    assert (state.last_sequence, state.buckets.on_hand) == (2, D(14))
    assert row.on_hand == D(14)
    assert [e.on_hand for e in of(AvailabilityChanged, events)] == [D(10), D(14)]


async def test_a_gap_that_fills_in_time_raises_nothing(tmp_path: Path, amqp_url: str) -> None:
    async with warehouse(tmp_path, amqp_url) as w:
        await w.post(delta("SKU-FILL", 1, 10))
        await w.post(delta("SKU-FILL", 3, 1))
        await w.applied()
        w.clock.advance(HOLD_S / 2)
        await w.post(delta("SKU-FILL", 2, 2))
        await w.applied()
        w.clock.advance(HOLD_S)
        state = await w.state("SKU-FILL")
        row = await w.read_model("SKU-FILL")
        events = await w.events(expect=2)

    assert (state.last_sequence, state.buckets.on_hand, state.gap_since) == (3, D(13), None)
    assert (row.on_hand, row.needs_snapshot) == (D(13), False)
    assert of(ExceptionNotice, events) == []


async def test_a_gap_not_filled_raises_and_needs_a_snapshot(tmp_path: Path, amqp_url: str) -> None:
    async with warehouse(tmp_path, amqp_url) as w:
        await w.post(delta("SKU-GAP", 1, 10))
        await w.post(delta("SKU-GAP", 3, 1))
        await w.applied()
        w.clock.advance(HOLD_S + 1)
        events = await w.events(expect=3)  # availability, then the gap and its availability
        state = await w.state("SKU-GAP")
        row = await w.read_model("SKU-GAP")
        gaps = w.gateway.inventory_metrics.gaps.labels("raised")._value.get()

    (exception,) = of(ExceptionNotice, events)
    assert exception.kind == "inventory_gap"
    assert (state.needs_snapshot, state.buckets.on_hand, len(state.held)) == (True, D(10), 1)
    assert (row.on_hand, row.needs_snapshot) == (D(10), True)
    assert of(AvailabilityChanged, events)[-1].needs_snapshot is True
    assert gaps == 1


async def test_a_fresh_snapshot_resets_and_publishes_drift_a_stale_one_is_ignored(
    tmp_path: Path, amqp_url: str
) -> None:
    async with warehouse(tmp_path, amqp_url) as w:
        await w.post(delta("SKU-SNAP", 1, 10))
        await w.post(delta("SKU-SNAP", 2, 5))
        await w.post(snapshot("SKU-SNAP", 12, minute=30))  # the deltas said 15
        await w.post(snapshot("SKU-SNAP", 99, minute=20))  # older than what it holds
        await w.post(delta("SKU-SNAP", 3, 7, minute=25))  # covered by the snapshot
        await w.applied()
        state = await w.state("SKU-SNAP")
        row = await w.read_model("SKU-SNAP")
        events = await w.events(expect=4)
        store = w.gateway.store
        assert store is not None
        recorded = await store.inventory.drift("SKU-SNAP", LOCATION)
        stale = w.gateway.inventory_metrics.stale._value.get()

    assert state.buckets.on_hand == D(12)
    assert row.on_hand == D(12)
    (drift,) = of(InventoryDrift, events)
    assert drift.on_hand == D(-3)
    assert len(recorded) == 1
    assert [e.on_hand for e in of(AvailabilityChanged, events)] == [D(10), D(15), D(12)]
    assert stale == 2


async def test_a_delta_below_zero_is_kept_and_raises(tmp_path: Path, amqp_url: str) -> None:
    async with warehouse(tmp_path, amqp_url) as w:
        await w.post(delta("SKU-NEG", 1, 2))
        await w.post(delta("SKU-NEG", 2, -5))
        await w.applied()
        state = await w.state("SKU-NEG")
        row = await w.read_model("SKU-NEG")
        events = await w.events(expect=3)

    assert state.buckets.on_hand == D(-3)
    assert (row.on_hand, row.available) == (D(-3), D(-3))
    (exception,) = of(ExceptionNotice, events)
    assert exception.kind == "negative_inventory"


async def test_availability_events_coalesce_within_the_interval(
    tmp_path: Path, amqp_url: str
) -> None:
    async with warehouse(tmp_path, amqp_url, publish_interval_s=30) as w:
        await w.post(delta("SKU-CO", 1, 10))
        await w.applied()
        first = await w.events(expect=1)
        for seq in (2, 3, 4):
            await w.post(delta("SKU-CO", seq, 1))
        await w.applied()
        held_back = await w.events(expect=0)
        w.clock.advance(30)
        flushed = await w.events(expect=1)
        row = await w.read_model("SKU-CO")

    assert [e.on_hand for e in of(AvailabilityChanged, first)] == [D(10)]
    assert held_back == []
    assert [e.on_hand for e in of(AvailabilityChanged, flushed)] == [D(13)]
    assert row.on_hand == D(13)  # the read model is never coalesced
