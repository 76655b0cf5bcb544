"""The step being built: the state so far, the events to emit, and the helpers every rule uses."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Any

import msgspec
from msgspec import Struct

from actors.workflow.inputs import DeliveryOutcome, DocumentArrived, ThreadKey, TimerKind
from actors.workflow.state import STATUS_ORDER, OpenException, ThreadState
from actors.workflow.tolerances import Tolerances
from canonical import Document, DocumentRef, ExceptionNotice, PurchaseOrderStatus, encode_document
from canonical.events import ThreadStatus
from canonical.notices import ExceptionKind, Severity

__all__ = ["Context", "Draft", "Emitted", "day_start", "event_id"]

# Event ids are derived, not drawn: the same input applied to the same thread names its
# events the same, so even a step that ran twice could not put two ids on one event.
_EVENT_IDS = uuid.UUID("6f1d7a52-33c4-4e0c-9a51-0b8a4c2e7d10")
_DESCRIPTION_LIMIT = 2000


def event_id(key: ThreadKey, cause: str, n: int) -> str:
    """The message id of the `n`th event a thread emits for the input `cause`."""
    return str(uuid.uuid5(_EVENT_IDS, f"{key.supplier}\x00{key.po_number}\x00{cause}\x00{n}"))


def day_start(day: dt.date) -> float:
    """Midnight UTC of `day`, as a unix time: when a date-based deadline falls due."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC).timestamp()


def fingerprint(document: Document) -> str:
    """What tells the same document sent again from another one reusing its number."""
    return hashlib.sha256(encode_document(document)).hexdigest()[:32]


def _same_input(a: DocumentArrived | DeliveryOutcome, b: DocumentArrived | DeliveryOutcome) -> bool:
    if a.message_id == b.message_id:
        return True
    # The same document resent under another message id waits once.
    return (
        isinstance(a, DocumentArrived)
        and isinstance(b, DocumentArrived)
        and fingerprint(a.document) == fingerprint(b.document)
    )


class Context(Struct, frozen=True, kw_only=True):
    """What a step knows besides the state and the input: whose thread, the time, the limits."""

    key: ThreadKey
    now: float
    tolerances: Tolerances = Tolerances()


class Emitted(Struct, frozen=True, kw_only=True):
    """One event to publish: its message id, the input that caused it, the document."""

    message_id: str
    causation_id: str
    document: Document


class Draft:
    """Accumulates one step. Rules read `state`, call the helpers, and never touch I/O."""

    def __init__(self, state: ThreadState, context: Context) -> None:
        self.state = state
        self.context = context
        self.events: list[Emitted] = []
        self._cause = ""
        self._emitted_for_cause = 0

    @property
    def tolerances(self) -> Tolerances:
        return self.context.tolerances

    @property
    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.context.now, dt.UTC)

    def caused_by(self, message_id: str) -> None:
        """Events from here on are caused by `message_id` (a parked input applied later)."""
        self._cause = message_id
        self._emitted_for_cause = sum(1 for e in self.events if e.causation_id == message_id)

    def update(self, **changes: Any) -> None:
        self.state = msgspec.structs.replace(self.state, **changes)

    def emit(self, document: Document) -> str:
        message_id = event_id(self.context.key, self._cause, self._emitted_for_cause)
        self._emitted_for_cause += 1
        self.events.append(
            Emitted(message_id=message_id, causation_id=self._cause, document=document)
        )
        return message_id

    def first_seen(self, document_type: str, number: str, document: Document) -> bool:
        """True for a document number not seen in this thread before (and records it).

        The same document again is False and changes nothing; another document reusing the
        number is False too, and raises `duplicate_document`.
        """
        key = f"{document_type}:{number}"
        mark = fingerprint(document)
        seen = self.state.seen.get(key)
        if seen is None:
            self.update(seen={**self.state.seen, key: mark})
            return True
        if seen != mark:
            self.raise_exception(
                "duplicate_document",
                "warning",
                f"{document_type} {number} of {self.context.key} was received before with"
                " other content; the second one is not applied",
                DocumentRef(
                    document_type=document_type, document_number=number, message_id=self._cause
                ),
            )
        return False

    def raise_exception(
        self,
        kind: ExceptionKind,
        severity: Severity,
        description: str,
        reference: DocumentRef,
        *,
        line_number: int | None = None,
    ) -> None:
        exception_id = event_id(self.context.key, self._cause, self._emitted_for_cause)
        text = description[:_DESCRIPTION_LIMIT]
        self.emit(
            ExceptionNotice(
                exception_id=exception_id,
                kind=kind,
                severity=severity,
                raised_at=self.now,
                reference=reference,
                correlation_id=self.state.correlation_id,
                description=text,
                po_number=self.context.key.po_number,
                line_number=line_number,
            )
        )
        self.remember(exception_id, kind, text, line_number)

    def remember(
        self, exception_id: str, kind: str, description: str, line_number: int | None = None
    ) -> None:
        """Keep an exception open in the state (the trace lists it)."""
        found = OpenException(
            exception_id=exception_id,
            kind=kind,
            raised_at=self.context.now,
            description=description,
            line_number=line_number,
        )
        self.update(exceptions=(*self.state.exceptions, found))

    def advance(self, status: ThreadStatus, cause: DocumentRef | None = None) -> None:
        """Move the status forward (never back) and tell the ERP with a status event."""
        before = self.state.status
        if STATUS_ORDER.index(status) <= STATUS_ORDER.index(before):
            return
        self.update(status=status)
        buyer, supplier = self.state.buyer, self.state.supplier_party
        # "released" is the ERP's own news; the status events tell it what happened since.
        if status != "released" and buyer is not None and supplier is not None:
            self.emit(
                PurchaseOrderStatus(
                    po_number=self.state.po_number,
                    buyer=buyer,
                    supplier=supplier,
                    status=status,
                    previous_status=before,
                    changed_at=self.now,
                    cause=cause,
                )
            )

    def arm(self, kind: TimerKind, due_at: float) -> None:
        self.update(timers={**self.state.timers, kind: due_at})

    def cancel(self, *kinds: TimerKind) -> None:
        if any(kind in self.state.timers for kind in kinds):
            self.update(timers={k: v for k, v in self.state.timers.items() if k not in kinds})

    def park(self, held: DocumentArrived | DeliveryOutcome) -> None:
        """Keep an input until what it needs arrives; the park timer bounds the wait."""
        if any(_same_input(p, held) for p in self.state.parked):
            return
        self.update(parked=(*self.state.parked, held))
        if self.state.correlation_id is None and isinstance(held, DocumentArrived):
            # Until the order brings the thread's own, its first document's id ties it together.
            self.update(correlation_id=held.correlation_id)
        if "park_expiry" not in self.state.timers:
            self.arm("park_expiry", self.context.now + self.tolerances.park_hours * 3600)
