"""The inventory position's rules, pure: order, duplicates, gaps, snapshots, negatives."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.inventory.inputs import DeltaArrived, PositionInput, PositionKey, SnapshotArrived, Tick
from actors.inventory.rules import Context, Step, apply
from actors.inventory.state import Buckets, PositionState
from canonical.events import AvailabilityChanged, InventoryDrift
from canonical.inventory import InventoryDelta, InventoryPosition
from canonical.notices import ExceptionNotice

D = Decimal
KEY = PositionKey("SKU-1", "DC-EAST")
T0 = dt.datetime(2026, 3, 2, 6, tzinfo=dt.UTC)
HOLD = 300.0


def delta(
    seq: int, on_hand: int = 1, *, allocated: int = 0, minutes: int | None = None
) -> DeltaArrived:
    return DeltaArrived(
        message_id=f"msg-{seq}-{on_hand}-{allocated}",
        correlation_id=f"msg-{seq}",
        accepted_at=0.0,
        delta=InventoryDelta(
            delta_id=f"d-{seq}",
            sequence=seq,
            sku=KEY.sku,
            location_id=KEY.location_id,
            uom="EA",
            occurred_at=T0 + dt.timedelta(minutes=seq if minutes is None else minutes),
            reason="adjustment",
            on_hand=D(on_hand),
            allocated=D(allocated),
            available=D(on_hand - allocated),
        ),
    )


def snapshot(on_hand: int, *, minutes: int, allocated: int = 0) -> SnapshotArrived:
    return SnapshotArrived(
        message_id=f"snap-{minutes}",
        correlation_id=f"snap-{minutes}",
        accepted_at=0.0,
        position=InventoryPosition(
            sku=KEY.sku,
            location_id=KEY.location_id,
            uom="EA",
            as_of=T0 + dt.timedelta(minutes=minutes),
            on_hand=D(on_hand),
            allocated=D(allocated),
            available=D(on_hand - allocated),
        ),
    )


def context(now: float = 1_000.0, interval: float = 0.0) -> Context:
    return Context(
        key=KEY,
        now=now,
        gap_hold_s=HOLD,
        publish_interval_s=interval,
        max_held=100,
        remembered_ids=256,
    )


def run(
    items: list[PositionInput], state: PositionState | None = None, now: float = 1_000.0
) -> tuple[PositionState, list[Step]]:
    state = state or PositionState()
    steps = []
    for item in items:
        step = apply(state, item, context(now))
        steps.append(step)
        state = step.state
    return state, steps


def kinds(steps: list[Step]) -> list[str]:
    return [
        e.document.kind if isinstance(e.document, ExceptionNotice) else type(e.document).__name__
        for s in steps
        for e in s.events
    ]


def test_deltas_out_of_order_apply_in_sequence() -> None:
    state, steps = run([delta(2, 5), delta(1, 10), delta(3, -3)])

    assert state.buckets.on_hand == D(12)
    assert state.last_sequence == 3
    assert state.held == ()
    assert state.gap_since is None
    assert steps[0].gap_opened
    assert not steps[0].changed


def test_a_duplicated_delta_changes_nothing() -> None:
    state, steps = run([delta(1, 10), delta(1, 10), delta(2, 1), delta(2, 1)])

    assert state.buckets.on_hand == D(11)
    assert [s.duplicates for s in steps] == [0, 1, 0, 1]


def test_a_gap_not_filled_in_time_raises_and_needs_a_snapshot() -> None:
    state, _ = run([delta(1, 10), delta(3, 1)], now=1_000.0)
    early = apply(state, Tick(now=1_000.0 + HOLD - 1), context(1_000.0 + HOLD - 1))
    late = apply(state, Tick(now=1_000.0 + HOLD), context(1_000.0 + HOLD))

    assert early.state == state
    assert not early.events
    assert late.gap_raised
    assert late.state.needs_snapshot
    assert kinds([late]) == ["inventory_gap", "AvailabilityChanged"]
    assert late.state.buckets.on_hand == D(10)  # held, not applied


def test_a_fresh_snapshot_resets_records_drift_and_closes_the_gap() -> None:
    state, _ = run([delta(1, 10), delta(3, 1, minutes=30)])
    step = apply(state, snapshot(7, minutes=20), context())

    assert step.state.buckets == Buckets(on_hand=D(8))  # 7, then the held delta 3 (newer)
    assert step.drift is not None
    assert step.drift.on_hand == D(-3)
    assert not step.state.needs_snapshot
    assert step.state.held == ()
    assert [type(e.document) for e in step.events] == [InventoryDrift, AvailabilityChanged]


def test_a_stale_snapshot_and_a_delta_it_covers_are_ignored_and_counted() -> None:
    state, _ = run([delta(1, 10), snapshot(50, minutes=20)])
    old_snapshot = apply(state, snapshot(99, minutes=5), context())
    covered = apply(state, delta(2, 4, minutes=15), context())

    assert old_snapshot.stale == 1
    assert old_snapshot.state == state
    assert covered.stale == 1
    assert covered.state.buckets.on_hand == D(50)


def test_a_delta_below_zero_is_kept_as_said_and_raises() -> None:
    state, steps = run([delta(1, 2), delta(2, -5)])

    assert state.buckets.on_hand == D(-3)
    assert kinds(steps[1:]) == ["negative_inventory", "AvailabilityChanged"]


def test_availability_events_coalesce_within_the_interval() -> None:
    first = apply(PositionState(), delta(1, 10), context(100.0, interval=5.0))
    second = apply(first.state, delta(2, 1), context(101.0, interval=5.0))
    flushed = apply(second.state, Tick(now=105.0), context(105.0, interval=5.0))

    assert kinds([first]) == ["AvailabilityChanged"]
    assert second.events == ()
    assert second.due_at == 105.0
    (event,) = flushed.events
    assert isinstance(event.document, AvailabilityChanged)
    assert event.document.on_hand == D(11)


@settings(
    max_examples=200, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    amounts=st.lists(st.integers(-5, 20).filter(bool), min_size=1, max_size=8),
    data=st.data(),
)
def test_any_interleaving_and_duplication_ends_in_the_same_position(
    amounts: list[int], data: st.DataObject
) -> None:
    deltas = [delta(i + 1, amount) for i, amount in enumerate(amounts)]
    repeated = data.draw(st.lists(st.sampled_from(deltas), max_size=8))
    order = data.draw(st.permutations([*deltas, *repeated]))

    state, _ = run(list(order))

    assert state.buckets.on_hand == D(sum(amounts))
    assert state.last_sequence == len(amounts)
    assert state.held == ()
    assert state.gap_since is None


def test_a_gap_among_deltas_newer_than_a_snapshot_is_waited_for() -> None:
    state, _ = run([delta(1, 10), delta(3, 1, minutes=30), delta(5, 1, minutes=40)])
    step = apply(state, snapshot(7, minutes=20), context(2_000.0))

    assert step.state.buckets.on_hand == D(8)  # 7, then 3 starts the run; 5 waits for 4
    assert [d.sequence for d in step.state.held] == [5]
    assert step.state.gap_since == 2_000.0
    assert step.due_at == 2_000.0 + HOLD
