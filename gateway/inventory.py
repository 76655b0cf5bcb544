"""The inventory positions of one gateway: the ports over the store, the registry, the feeder,
and the metrics each committed step feeds.

The positions are runtime actors in a `Registry` under the gateway's `Supervisor` (restarts,
poison messages, passivation); the feeder is the task `run` starts. None of it is on the
request path: the feeder reads what the group commits already committed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
import msgspec
from anyio.abc import TaskStatus
from prometheus_client import CollectorRegistry, Counter, Gauge

from actors.inventory.actor import InventoryPositionActor, PositionDone, Settings
from actors.inventory.feeder import InventoryFeeder
from actors.inventory.inputs import PositionInput, PositionKey
from actors.inventory.ports import (
    CommittedDocument,
    PositionCommit,
    PositionLabel,
    PositionRecord,
    StepOutcome,
)
from actors.runtime import Registry, Supervisor
from gateway.config.inventory import InventorySettings
from gateway.store import Store
from gateway.store.inventory import InventoryLedger, PositionStep
from gateway.store.workflow_steps import EventRow

__all__ = ["Inventory", "InventoryMetrics", "StoreInventoryInputs", "StorePositions"]

LABELS: tuple[PositionLabel, ...] = ("in_step", "gap", "needs_snapshot")
_availability = msgspec.json.Encoder(decimal_format="string")


class StorePositions:
    """`PositionLedger` over the store: one step is one `apply_step` in a group commit."""

    def __init__(self, ledger: InventoryLedger) -> None:
        self._ledger = ledger

    async def load(self, key: PositionKey) -> PositionRecord | None:
        row = await self._ledger.position(key.sku, key.location_id)
        return None if row is None else PositionRecord(version=row.version, state=row.state)

    async def commit(self, step: PositionCommit) -> tuple[StepOutcome, int]:
        return await self._ledger.apply_step(
            PositionStep(
                sku=step.key.sku,
                location_id=step.key.location_id,
                expected_version=step.expected_version,
                message_id=step.message_id,
                state=step.state,
                label=step.label,
                due_at=step.due_at,
                availability=(
                    None if step.availability is None else _availability.encode(step.availability)
                ),
                events=tuple(EventRow(**msgspec.structs.asdict(e)) for e in step.events),
                drift=step.drift,
            )
        )


class StoreInventoryInputs:
    """`InventoryInputs` over the store: inventory outbox rows by cursor, due positions."""

    def __init__(self, ledger: InventoryLedger, *, scan: int) -> None:
        self._ledger = ledger
        self._scan = scan

    async def cursor(self) -> int:
        saved = await self._ledger.cursor()
        if saved is not None:
            return saved
        # First start of the positions on this store: from now on, not through its history.
        top = await self._ledger.outbox_top()
        await self._ledger.save_cursor(top)
        return top

    async def save_cursor(self, position: int) -> None:
        await self._ledger.save_cursor(position)

    async def documents_after(
        self, position: int, limit: int
    ) -> tuple[list[CommittedDocument], int]:
        rows, reached = await self._ledger.committed(position, limit, scan=self._scan)
        return [
            CommittedDocument(
                position=r.seq, partner_id=r.partner_id, body=r.body, accepted_at=r.created_at
            )
            for r in rows
        ], reached

    async def due(self, now: float, limit: int) -> list[PositionKey]:
        return [PositionKey(*key) for key in await self._ledger.due(now, limit)]


class InventoryMetrics:
    """Positions by state, gaps, ignored stale inputs, drift: on the gateway's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.positions = Gauge(
            "gateway_inventory_positions",
            "Inventory positions by state (in_step, gap, needs_snapshot)",
            ["state"],
            registry=registry,
        )
        self.gaps = Counter(
            "gateway_inventory_gaps",
            "Gaps in a position's delta sequence: opened, and raised after the hold time",
            ["stage"],
            registry=registry,
        )
        self.stale = Counter(
            "gateway_inventory_stale_inputs",
            "Deltas and snapshots ignored as older than what the position holds",
            registry=registry,
        )
        self.drift = Counter(
            "gateway_inventory_drift",
            "Snapshots that disagreed with what the deltas had said",
            registry=registry,
        )
        self.gaps.labels("opened")
        self.gaps.labels("raised")

    def observe(self, done: PositionDone) -> None:
        step = done.step
        if step.gap_opened:
            self.gaps.labels("opened").inc()
        if step.gap_raised:
            self.gaps.labels("raised").inc()
        if step.stale:
            self.stale.inc(step.stale)
        if step.drift is not None:
            self.drift.inc()


class Inventory:
    """The positions and their feeder; `run` them in a task group."""

    def __init__(
        self,
        settings: InventorySettings,
        store: Store,
        supervisor: Supervisor,
        metrics: InventoryMetrics,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._clock = clock
        self._ledger = StorePositions(store.inventory)
        self._settings = Settings(
            gap_hold_s=settings.gap_hold_s,
            publish_interval_s=settings.publish_interval_s,
            max_held=settings.max_held,
            remembered_ids=settings.remembered_ids,
        )
        self.metrics = metrics
        self.registry: Registry[PositionKey, PositionInput, StepOutcome] = Registry(
            supervisor, "inventory", self._position, passivate_after=settings.passivate_after_s
        )
        self.feeder = InventoryFeeder(
            StoreInventoryInputs(store.inventory, scan=settings.feed_scan),
            self.registry.ref,
            clock=clock,
            batch=settings.feed_batch,
            poll_s=settings.feed_poll_s,
            scan=settings.feed_scan,
            coalesce_s=settings.feed_coalesce_s,
        )

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with anyio.create_task_group() as tg:
            await tg.start(self.feeder.run, name="inventory-feeder")
            task_status.started()

    async def sample(self) -> None:
        """Set the gauge that needs a query: positions by state."""
        counts = await self._store.inventory.label_counts()
        for label in LABELS:
            self.metrics.positions.labels(label).set(counts.get(label, 0))

    def _position(self, key: PositionKey) -> InventoryPositionActor:
        return InventoryPositionActor(
            key,
            self._ledger,
            settings=self._settings,
            clock=self._clock,
            observe=self.metrics.observe,
        )
