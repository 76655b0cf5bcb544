"""The inventory position's rules: pure functions from (state, input, context) to a step.

- Deltas apply in `sequence` order, once each (by `delta_id`); one beyond a gap is held.
- A gap held past `gap_hold_s` raises `inventory_gap` and marks the position `needs_snapshot`.
- A delta not newer than the position's snapshot, or at a sequence already passed, is stale:
  ignored and counted.
- A snapshot newer than what the position holds resets it; the difference between what the
  deltas said and the snapshot is the drift, published as `inventory_drift`.
- A delta that takes a bucket below zero is applied as the source said and raises
  `negative_inventory`: never a silent clamp.
- Every change publishes `availability_changed`, at most one per `publish_interval_s`
  (coalesced: the next one, when due, carries the position as it then stands).
"""

from __future__ import annotations

import datetime as dt
import uuid

from msgspec import Struct, structs

from actors.inventory.inputs import (
    DeltaArrived,
    PositionInput,
    PositionKey,
    SnapshotArrived,
    Tick,
)
from actors.inventory.state import BUCKETS, Buckets, PositionState
from canonical.documents import Document
from canonical.events import AvailabilityChanged, InventoryDrift
from canonical.inventory import InventoryDelta, InventoryPosition
from canonical.notices import DocumentRef, ExceptionKind, ExceptionNotice

__all__ = ["Context", "Emitted", "Step", "apply", "availability_of", "due_at"]

_EVENT_IDS = uuid.UUID("5b0c3f8e-93a4-4d1c-9c57-2f1f3c1d8a20")


class Context(Struct, frozen=True, kw_only=True):
    """What the rules need besides the state and the input."""

    key: PositionKey
    now: float
    gap_hold_s: float
    publish_interval_s: float
    max_held: int
    remembered_ids: int


class Emitted(Struct, frozen=True, kw_only=True):
    """One event to publish: its message id, what caused it, the document."""

    message_id: str
    causation_id: str
    correlation_id: str
    document: Document


class Step(Struct, frozen=True, kw_only=True):
    """What one input did: the new state, the events, and what the metrics count."""

    state: PositionState
    events: tuple[Emitted, ...] = ()
    changed: bool = False  # the read model row must be written
    stale: int = 0  # deltas or snapshots ignored as older than what the position holds
    duplicates: int = 0
    gap_opened: bool = False
    gap_raised: bool = False
    drift: InventoryDrift | None = None
    # When the feeder is to tick the position: its open gap falls due, or a coalesced event.
    due_at: float | None = None


class _Draft:
    """A step being built: the state so far and what it emits."""

    def __init__(self, state: PositionState, context: Context, cause: str, correlation: str):
        self.state = state
        self.context = context
        self.cause = cause
        self.correlation = correlation
        self.events: list[Emitted] = []
        self.changed = False
        self.stale = 0
        self.duplicates = 0
        self.gap_opened = False
        self.gap_raised = False
        self.drift: InventoryDrift | None = None

    def update(self, **changes: object) -> None:
        self.state = structs.replace(self.state, **changes)

    def emit(self, document: Document) -> None:
        key = self.context.key
        n = len(self.events)
        name = f"{key.sku}\x00{key.location_id}\x00{self.cause}\x00{n}"
        self.events.append(
            Emitted(
                message_id=str(uuid.uuid5(_EVENT_IDS, name)),
                causation_id=self.cause,
                correlation_id=self.correlation,
                document=document,
            )
        )

    def exception(self, kind: ExceptionKind, description: str, ref: DocumentRef) -> None:
        self.emit(
            ExceptionNotice(
                exception_id=f"inv-{uuid.uuid5(_EVENT_IDS, f'{self.cause}:{kind}').hex[:24]}",
                kind=kind,
                severity="error",
                raised_at=_utc(self.context.now),
                reference=ref,
                correlation_id=self.correlation,
                description=description[:2000],
            )
        )

    def finish(self) -> Step:
        return Step(
            state=self.state,
            events=tuple(self.events),
            changed=self.changed,
            stale=self.stale,
            duplicates=self.duplicates,
            gap_opened=self.gap_opened,
            gap_raised=self.gap_raised,
            drift=self.drift,
            due_at=due_at(self.state, self.context),
        )


def apply(state: PositionState, item: PositionInput, context: Context) -> Step:
    """Apply one input to a position; the caller commits the step whole."""
    match item:
        case DeltaArrived():
            draft = _Draft(state, context, item.message_id, item.correlation_id)
            _delta(draft, item.delta)
        case SnapshotArrived():
            draft = _Draft(state, context, item.message_id, item.correlation_id)
            _snapshot(draft, item.position)
        case Tick():
            draft = _Draft(state, context, f"tick:{item.now!r}", _position_ref(context.key))
            _gap_check(draft)
    _publish(draft)
    return draft.finish()


def availability_of(key: PositionKey, state: PositionState) -> AvailabilityChanged:
    """The position as its read model row and availability_changed event show it."""
    b = state.buckets
    return AvailabilityChanged(
        sku=key.sku,
        location_id=key.location_id,
        uom=state.uom or "EA",
        on_hand=b.on_hand,
        allocated=b.allocated,
        in_transit=b.in_transit,
        quarantined=b.quarantined,
        available=b.available,
        as_of=state.as_of or _utc(0),
        needs_snapshot=state.needs_snapshot,
    )


def _delta(draft: _Draft, delta: InventoryDelta) -> None:
    s = draft.state
    if delta.delta_id in s.recent_ids or any(h.delta_id == delta.delta_id for h in s.held):
        draft.duplicates += 1
        return
    if s.snapshot_at is not None and delta.occurred_at <= s.snapshot_at:
        draft.stale += 1  # the snapshot already counts it
        return
    if s.last_sequence is not None and delta.sequence <= s.last_sequence:
        draft.stale += 1  # a sequence passed long ago, its id forgotten
        return
    if s.last_sequence is None or delta.sequence == s.last_sequence + 1:
        _apply_delta(draft, delta)
        _drain(draft)
        return
    _hold(draft, delta)


def _hold(draft: _Draft, delta: InventoryDelta) -> None:
    s = draft.state
    if len(s.held) >= draft.context.max_held:
        draft.stale += 1  # no room: the snapshot the position now needs will carry it
        if not s.needs_snapshot:
            _raise_gap(draft, f"more than {len(s.held)} deltas held behind the gap")
        return
    held = tuple(sorted((*s.held, delta), key=lambda d: d.sequence))
    if s.gap_since is None:
        draft.update(gap_since=draft.context.now)
        draft.gap_opened = True
    draft.update(held=held)


def _drain(draft: _Draft) -> None:
    """Apply the held deltas that now follow on; what remains waits behind a new gap."""
    s = draft.state
    held = list(s.held)
    while held and s.last_sequence is not None and held[0].sequence <= s.last_sequence + 1:
        delta = held.pop(0)
        if delta.sequence == s.last_sequence + 1:
            _apply_delta(draft, delta)
        s = draft.state
    if not held:
        draft.update(held=(), gap_since=None)
    elif len(held) != len(s.held):
        # Progress was made: the wait for the next missing one starts now.
        draft.update(held=tuple(held), gap_since=draft.context.now)


def _apply_delta(draft: _Draft, delta: InventoryDelta) -> None:
    s = draft.state
    if s.uom is not None and delta.uom != s.uom:
        draft.exception(
            "invalid_document",
            f"delta {delta.delta_id} is in {delta.uom}, the position in {s.uom}: not applied",
            DocumentRef(document_type="inventory_delta", document_number=delta.reference),
        )
        draft.update(last_sequence=delta.sequence)  # it took its place in the sequence
        return
    buckets = s.buckets.plus(delta)
    recent = (*s.recent_ids, delta.delta_id)[-draft.context.remembered_ids :]
    newest = delta.occurred_at if s.as_of is None else max(s.as_of, delta.occurred_at)
    draft.update(
        uom=delta.uom,
        buckets=buckets,
        last_sequence=delta.sequence,
        recent_ids=recent,
        as_of=newest,
    )
    draft.changed = True
    below = buckets.negative()
    if below:
        # Kept as the source said: a clamp would hide the error the source has to fix.
        draft.exception(
            "negative_inventory",
            f"delta {delta.delta_id} (sequence {delta.sequence}) takes "
            + ", ".join(f"{b} to {getattr(buckets, b)}" for b in below)
            + f" for {delta.sku} at {delta.location_id}",
            DocumentRef(document_type="inventory_delta", document_number=delta.reference),
        )


def _snapshot(draft: _Draft, snapshot: InventoryPosition) -> None:
    s = draft.state
    if s.as_of is not None and snapshot.as_of <= s.as_of:
        draft.stale += 1  # the position already holds something newer
        return
    taken = Buckets(**{b: getattr(snapshot, b) for b in BUCKETS})
    if s.as_of is not None:
        drift = taken.minus(s.buckets)
        if any(getattr(drift, b) for b in BUCKETS):
            draft.drift = InventoryDrift(
                sku=snapshot.sku,
                location_id=snapshot.location_id,
                uom=snapshot.uom,
                snapshot_as_of=snapshot.as_of,
                position_as_of=s.as_of,
                **{b: getattr(drift, b) for b in BUCKETS},
            )
            draft.emit(draft.drift)
    newer = [d for d in s.held if d.occurred_at > snapshot.as_of]
    draft.stale += len(s.held) - len(newer)
    draft.update(
        uom=snapshot.uom,
        buckets=taken,
        as_of=snapshot.as_of,
        snapshot_at=snapshot.as_of,
        last_sequence=None,
        held=(),
        gap_since=None,
        needs_snapshot=False,
    )
    draft.changed = True
    if newer:
        # The snapshot covers whatever was missing before them: the lowest starts the run.
        first, *rest = newer
        _apply_delta(draft, first)
        draft.update(held=tuple(rest))
        _drain(draft)
        if draft.state.held and draft.state.gap_since is None:
            draft.update(gap_since=draft.context.now)  # a gap among them: its wait starts now
            draft.gap_opened = True


def _gap_check(draft: _Draft) -> None:
    s = draft.state
    if s.gap_since is None or s.needs_snapshot:
        return
    if draft.context.now < s.gap_since + draft.context.gap_hold_s:
        return
    _raise_gap(
        draft, f"no delta after sequence {s.last_sequence} for {draft.context.gap_hold_s:g} s"
    )


def _raise_gap(draft: _Draft, why: str) -> None:
    s = draft.state
    waiting = ", ".join(str(d.sequence) for d in s.held[:10])
    key = draft.context.key
    draft.exception(
        "inventory_gap",
        f"{key.sku} at {key.location_id}: {why}; held: {waiting or 'none'}; needs a snapshot",
        DocumentRef(document_type="inventory_delta", document_number=None),
    )
    draft.update(needs_snapshot=True)
    draft.changed = True
    draft.gap_raised = True


def _publish(draft: _Draft) -> None:
    s = draft.state
    interval = draft.context.publish_interval_s
    now = draft.context.now
    if not (draft.changed or s.publish_pending) or s.as_of is None:
        return
    if interval and s.published_at is not None and now < s.published_at + interval:
        draft.update(publish_pending=True)
        return
    draft.emit(availability_of(draft.context.key, s))
    draft.update(published_at=now, publish_pending=False)


def due_at(state: PositionState, context: Context) -> float | None:
    """When the position wants a tick: its gap to raise, or a coalesced event to publish."""
    times = []
    if state.gap_since is not None and not state.needs_snapshot:
        times.append(state.gap_since + context.gap_hold_s)
    if state.publish_pending:
        times.append((state.published_at or 0.0) + context.publish_interval_s)
    return min(times) if times else None


def _position_ref(key: PositionKey) -> str:
    return f"inventory:{key.sku}@{key.location_id}"


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)
