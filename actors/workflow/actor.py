"""One purchase order's thread as a runtime actor: apply each input, commit the step, keep state.

Created on demand in a runtime `Registry` keyed by `ThreadKey` and passivated when idle: every
step is already in the store, so `stopping()` saves nothing, and `started()` loads the state
the last step committed.

With a tracer, each input is a `workflow step` span, a child of the input's `traceparent` (the
document's or the delivered message's trace; a timer's step starts a trace of its own).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from msgspec import Struct

from actors.runtime import Actor
from actors.workflow import rules
from actors.workflow.inputs import ThreadInput, ThreadKey, TimerFired
from actors.workflow.ports import EventRecord, StepCommit, StepOutcome, ThreadLedger
from actors.workflow.rules import Context, Emitted, Step
from actors.workflow.state import ThreadState, decode_state, encode_state
from actors.workflow.tolerances import Tolerances
from canonical import encode_envelope, new_envelope, routing_key
from canonical.errors import StoreUnavailable
from canonical.tracing import Tracer

__all__ = ["PurchaseOrderThread", "StepDone", "ThreadConflict", "publishing_partner"]

log = logging.getLogger(__name__)

# A partner id is one word of the routing key; a supplier code that is not one publishes as this.
FALLBACK_PARTNER = "workflow"
_PARTNER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class ThreadConflict(Exception):
    """The thread's stored version moved under this actor twice in a row: a second writer."""


class StepDone(Struct, frozen=True, kw_only=True):
    """A committed step, for observers (metrics, the timer service's wake-up)."""

    key: ThreadKey
    input: ThreadInput
    before: ThreadState
    step: Step


def publishing_partner(key: ThreadKey) -> str:
    """The partner id a thread's events are published under: its supplier's, when it fits."""
    return key.supplier if _PARTNER_ID.match(key.supplier) else FALLBACK_PARTNER


class PurchaseOrderThread(Actor[ThreadInput, StepOutcome]):
    """Applies inputs to one thread in arrival order, one committed step each.

    The answer says what became of the input: "applied", "duplicate" (applied before),
    "stale" (a timer that was re-armed or fired since). `StoreUnavailable` is a refusal: the
    asker retries later and the state in memory is unchanged. A step whose version the store
    no longer has (its commit's answer was lost) reloads the state and is applied again.
    `tolerances()` is read at each step: a reloaded configuration's rules apply to the next
    input of a thread already live.
    """

    refusals = (StoreUnavailable,)

    def __init__(
        self,
        key: ThreadKey,
        ledger: ThreadLedger,
        *,
        tolerances: Callable[[], Tolerances],
        clock: Callable[[], float],
        observe: Callable[[StepDone], None] | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self.key = key
        self._ledger = ledger
        self._tolerances = tolerances
        self._clock = clock
        self._observe = observe
        self._tracer = tracer
        self.state = ThreadState.new(key)
        self.version = 0

    async def started(self) -> None:
        await self._load()

    async def receive(self, message: ThreadInput) -> StepOutcome:
        if self._tracer is None:
            return await self._apply(message)
        span = self._tracer.start(
            "workflow step",
            None if isinstance(message, TimerFired) else message.traceparent,
            attributes={
                "gateway.thread": str(self.key),
                "gateway.input": type(message).__name__,
                "messaging.message.id": message.message_id,
            },
        )
        try:
            outcome = await self._apply(message)
        except BaseException as error:
            span.end(type(error).__name__)
            raise
        span.set_attribute("gateway.outcome", outcome)
        span.end()
        return outcome

    async def _apply(self, message: ThreadInput) -> StepOutcome:
        """Apply `message` in one committed step (or find it applied); say what became of it."""
        for _ in range(2):
            if message.message_id in self.state.applied:
                return "duplicate"
            before = self.state
            context = Context(key=self.key, now=self._clock(), tolerances=self._tolerances())
            step = rules.apply(before, message, context)
            outcome, version = await self._ledger.commit(self._commit(message, step))
            if outcome == "applied":
                self.state, self.version = step.state, version
                if self._observe is not None:
                    self._observe(StepDone(key=self.key, input=message, before=before, step=step))
                return outcome
            if outcome in ("duplicate", "conflict"):
                # Applied by an earlier step whose answer got lost, or the version moved: the
                # store is right, memory is behind.
                await self._load()
                if outcome == "duplicate":
                    return outcome
                continue
            return outcome
        raise ThreadConflict(f"thread {self.key}: its version moved twice during one step")

    async def _load(self) -> None:
        record = await self._ledger.load(self.key)
        if record is None:
            self.state, self.version = ThreadState.new(self.key), 0
        else:
            self.state, self.version = decode_state(record.state), record.version

    def _commit(self, message: ThreadInput, step: Step) -> StepCommit:
        state = step.state
        return StepCommit(
            key=self.key,
            expected_version=self.version,
            input=message,
            state=encode_state(state),
            status=state.status,
            buyer=state.buyer.party_id if state.buyer is not None else None,
            correlation_id=state.correlation_id,
            events=tuple(self._event(e, state, message) for e in step.events),
            arm=tuple((a.kind, a.due_at) for a in step.arm),
            cancel=step.cancel,
            claim=(message.kind, message.generation) if isinstance(message, TimerFired) else None,
        )

    def _event(self, emitted: Emitted, state: ThreadState, cause: ThreadInput) -> EventRecord:
        partner = publishing_partner(self.key)
        # An event continues the trace of the document (or delivery) that caused it; a timer's
        # has none to continue.
        traceparent = None if isinstance(cause, TimerFired) else cause.traceparent
        envelope = new_envelope(
            emitted.document,
            partner_id=partner,
            idempotency_key=emitted.message_id,
            correlation_id=state.correlation_id or emitted.causation_id,
            causation_id=emitted.causation_id,
            message_id=emitted.message_id,
            traceparent=traceparent,
        )
        return EventRecord(
            message_id=envelope.message_id,
            partner_id=partner,
            document_type=envelope.document_type,
            schema_version=envelope.schema_version,
            routing_key=routing_key(envelope.document_type, partner),
            correlation_id=envelope.correlation_id,
            causation_id=emitted.causation_id,
            body=encode_envelope(envelope),
        )
