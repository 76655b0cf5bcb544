"""One (SKU, location) inventory position as a runtime actor: apply each input, commit the step.

Created on demand in a runtime `Registry` keyed by `PositionKey` and passivated when idle:
every step is in the store, so `started()` loads what the last step committed.
"""

from __future__ import annotations

from collections.abc import Callable

from msgspec import Struct

from actors.inventory import rules
from actors.inventory.inputs import DeltaArrived, PositionInput, PositionKey, SnapshotArrived
from actors.inventory.ports import (
    EventRecord,
    PositionCommit,
    PositionLabel,
    PositionLedger,
    StepOutcome,
)
from actors.inventory.rules import Context, Emitted, Step
from actors.inventory.state import PositionState, decode_state, encode_state
from actors.runtime import Actor
from canonical import encode_envelope, new_envelope, routing_key
from canonical.availability import Availability
from canonical.codec import encode_document
from canonical.errors import StoreUnavailable

__all__ = ["InventoryPositionActor", "PositionConflict", "PositionDone", "Settings"]

# Events are published as `{document}.inventory`: a position belongs to no partner.
PUBLISHER = "inventory"


class PositionConflict(Exception):
    """The position's stored version moved under this actor twice in a row: a second writer."""


class Settings(Struct, frozen=True, kw_only=True):
    """The `[inventory]` bounds the rules need."""

    gap_hold_s: float
    publish_interval_s: float
    max_held: int
    remembered_ids: int


class PositionDone(Struct, frozen=True, kw_only=True):
    """A committed step, for observers (metrics)."""

    key: PositionKey
    before: PositionState
    step: Step


def label_of(state: PositionState) -> PositionLabel:
    if state.needs_snapshot:
        return "needs_snapshot"
    return "gap" if state.gap_since is not None else "in_step"


class InventoryPositionActor(Actor[PositionInput, StepOutcome]):
    """Applies inputs to one position in arrival order, one committed step each.

    `StoreUnavailable` is a refusal: the asker retries later and memory is unchanged. A step
    whose version the store no longer has reloads the state and is applied again.
    """

    refusals = (StoreUnavailable,)

    def __init__(
        self,
        key: PositionKey,
        ledger: PositionLedger,
        *,
        settings: Settings,
        clock: Callable[[], float],
        observe: Callable[[PositionDone], None] | None = None,
    ) -> None:
        self.key = key
        self._ledger = ledger
        self._settings = settings
        self._clock = clock
        self._observe = observe
        self.state = PositionState()
        self.version = 0

    async def started(self) -> None:
        await self._load()

    async def receive(self, message: PositionInput) -> StepOutcome:
        for _ in range(2):
            before = self.state
            s = self._settings
            context = Context(
                key=self.key,
                now=self._clock(),
                gap_hold_s=s.gap_hold_s,
                publish_interval_s=s.publish_interval_s,
                max_held=s.max_held,
                remembered_ids=s.remembered_ids,
            )
            step = rules.apply(before, message, context)
            if step.state == before and not step.events:
                # Nothing to write (a stale input, a tick with nothing due): counted all the same.
                self._observed(before, step)
                return "applied"
            outcome, version = await self._ledger.commit(self._commit(message, step))
            if outcome == "applied":
                self.state, self.version = step.state, version
                self._observed(before, step)
                return outcome
            await self._load()  # applied before (its answer lost), or the version moved
            if outcome == "duplicate":
                return outcome
        raise PositionConflict(f"position {self.key}: its version moved twice during one step")

    def _observed(self, before: PositionState, step: Step) -> None:
        if self._observe is not None:
            self._observe(PositionDone(key=self.key, before=before, step=step))

    async def _load(self) -> None:
        record = await self._ledger.load(self.key)
        if record is None:
            self.state, self.version = PositionState(), 0
        else:
            self.state, self.version = decode_state(record.state), record.version

    def _commit(self, message: PositionInput, step: Step) -> PositionCommit:
        state = step.state
        row = rules.availability_of(self.key, state)
        return PositionCommit(
            key=self.key,
            expected_version=self.version,
            message_id=(
                message.message_id if isinstance(message, DeltaArrived | SnapshotArrived) else None
            ),
            state=encode_state(state),
            label=label_of(state),
            due_at=step.due_at,
            availability=Availability(
                sku=row.sku,
                location_id=row.location_id,
                uom=row.uom,
                on_hand=row.on_hand,
                allocated=row.allocated,
                in_transit=row.in_transit,
                quarantined=row.quarantined,
                available=row.available,
                as_of=row.as_of,
                needs_snapshot=row.needs_snapshot,
            )
            if step.changed
            else None,
            events=tuple(self._event(e) for e in step.events),
            drift=encode_document(step.drift) if step.drift is not None else None,
        )

    def _event(self, emitted: Emitted) -> EventRecord:
        envelope = new_envelope(
            emitted.document,
            partner_id=PUBLISHER,
            idempotency_key=emitted.message_id,
            correlation_id=emitted.correlation_id,
            causation_id=emitted.causation_id,
            message_id=emitted.message_id,
        )
        return EventRecord(
            message_id=envelope.message_id,
            partner_id=PUBLISHER,
            document_type=envelope.document_type,
            schema_version=envelope.schema_version,
            routing_key=routing_key(envelope.document_type, PUBLISHER),
            correlation_id=envelope.correlation_id,
            causation_id=emitted.causation_id,
            body=encode_envelope(envelope),
        )
