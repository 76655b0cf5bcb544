"""The purchase-order thread's rules: `apply(state, input, context) -> Step`, with no I/O.

A step is the new state, the events to emit and the timers to arm or cancel; the actor commits
all of it with the input's consumed mark in one transaction. Timers are data the state implies
(`ThreadState.timers`): the step's timer changes are the difference between the two states.

Order of inputs: everything but the order and the timers waits (is parked) until the order has
arrived, and a receipt waits for the ASN it is compared with; the order's arrival (or the ASN's)
applies what waited, in the order it came. When the park timer fires first, what still waits
for the order becomes an `unknown_purchase_order` exception, and a receipt whose ASN never came
is compared with what was shipped so far.
"""

from __future__ import annotations

from msgspec import Struct

from actors.workflow.inputs import (
    DeliveryOutcome,
    DocumentArrived,
    ThreadInput,
    TimerFired,
    TimerKind,
)
from actors.workflow.rules import (
    acknowledgement,
    deadlines,
    invoicing,
    ordering,
    receiving,
    shipment,
)
from actors.workflow.rules._draft import Context, Draft, Emitted, event_id
from actors.workflow.state import ThreadState
from canonical import (
    AdvanceShipNotice,
    DocumentRef,
    GoodsReceipt,
    Invoice,
    PurchaseOrder,
    PurchaseOrderAck,
    PurchaseOrderChange,
    document_type_of,
)

__all__ = ["ArmTimer", "Context", "Emitted", "Step", "apply", "event_id"]


class ArmTimer(Struct, frozen=True, kw_only=True):
    """Arm (or re-arm) the thread's timer of `kind` for `due_at` (unix time)."""

    kind: TimerKind
    due_at: float


class Step(Struct, frozen=True, kw_only=True):
    """What applying one input does: the new state, its events, its timer changes."""

    state: ThreadState
    events: tuple[Emitted, ...] = ()
    arm: tuple[ArmTimer, ...] = ()
    cancel: tuple[TimerKind, ...] = ()


def apply(state: ThreadState, event: ThreadInput, context: Context) -> Step:
    """Apply one input to a thread's state. Pure: the same arguments give the same step.

    An input already applied (by message id) changes nothing and emits nothing.
    """
    if event.message_id in state.applied:
        return Step(state=state)
    draft = Draft(state, context)
    draft.update(applied=(*state.applied, event.message_id))
    _apply(draft, event)
    before, after = state.timers, draft.state.timers
    return Step(
        state=draft.state,
        events=tuple(draft.events),
        arm=tuple(
            ArmTimer(kind=kind, due_at=due)
            for kind, due in after.items()
            if before.get(kind) != due
        ),
        cancel=tuple(kind for kind in before if kind not in after),
    )


def _apply(draft: Draft, event: ThreadInput, *, expired: bool = False) -> None:
    draft.caused_by(event.message_id)
    match event:
        case TimerFired(kind="park_expiry"):
            _expire(draft, event)
        case TimerFired():
            deadlines.overdue(draft, event)
        case DocumentArrived(document=PurchaseOrder() as order):
            ordering.release(draft, event, order)
            _unpark(draft, event)
        case _ if not draft.state.ordered:
            draft.park(event)
        case DeliveryOutcome():
            ordering.delivery(draft, event)
        case DocumentArrived(document=PurchaseOrderChange() as order_change):
            ordering.change(draft, event, order_change)
        case DocumentArrived(document=PurchaseOrderAck() as ack):
            acknowledgement.acknowledge(draft, event, ack)
        case DocumentArrived(document=AdvanceShipNotice() as asn):
            shipment.ship(draft, event, asn)
            _unpark(draft, event)  # receipts that waited for this ASN
        case DocumentArrived(document=GoodsReceipt() as receipt):
            if not expired and receiving.waits_for_shipment(draft, receipt):
                draft.park(event)
            else:
                receiving.receive(draft, event, receipt)
        case DocumentArrived(document=Invoice() as invoice):
            invoicing.match(draft, event, invoice)


def _unpark(draft: Draft, cause: ThreadInput) -> None:
    """Apply what waited, in arrival order; what still cannot go on waits again."""
    parked = draft.state.parked
    if not parked or not draft.state.ordered:
        return
    draft.update(parked=())
    for held in parked:
        _apply(draft, held)
    if not draft.state.parked:
        draft.cancel("park_expiry")
    draft.caused_by(cause.message_id)


def _expire(draft: Draft, timer: TimerFired) -> None:
    if draft.state.timers.get("park_expiry") != timer.due_at:
        return  # nothing waits any more, or it waits for a later deadline
    parked = draft.state.parked
    draft.update(parked=())
    draft.cancel("park_expiry")
    for held in parked:
        if draft.state.ordered:
            _apply(draft, held, expired=True)
            continue
        draft.caused_by(timer.message_id)
        draft.raise_exception(
            "unknown_purchase_order",
            "error",
            f"{_reference(held).document_type} for {draft.context.key}, an order the gateway"
            f" has not seen, waited {draft.tolerances.park_hours:g} hours for it",
            _reference(held),
        )


def _reference(held: DocumentArrived | DeliveryOutcome) -> DocumentRef:
    if isinstance(held, DeliveryOutcome):
        return DocumentRef(document_type=held.document_type, message_id=held.delivered_message_id)
    document = held.document
    number = next(
        (
            getattr(document, name)
            for name in ("asn_number", "receipt_number", "invoice_number", "po_number")
            if hasattr(document, name)
        ),
        None,
    )
    return DocumentRef(
        document_type=document_type_of(document),
        document_number=number,
        message_id=held.message_id,
    )
