"""What a thread's timers mean when they fire: something that should have happened did not."""

from __future__ import annotations

from actors.workflow.inputs import TimerFired
from actors.workflow.rules._draft import Draft
from canonical import DocumentRef

__all__ = ["overdue"]


def overdue(draft: Draft, timer: TimerFired) -> None:
    """Raise the exception a deadline stands for, unless what it waited for has happened."""
    state = draft.state
    if state.timers.get(timer.kind) != timer.due_at:
        return  # re-armed or cancelled since: this firing is stale
    draft.cancel(timer.kind)
    if state.status == "closed":
        return
    order = DocumentRef(
        document_type="purchase_order",
        document_number=state.po_number,
        message_id=None,
    )
    po, supplier = state.po_number, state.supplier
    if timer.kind == "acknowledgement_due" and not state.acknowledged:
        hours = draft.tolerances.ack_sla_hours
        draft.raise_exception(
            "late_acknowledgement",
            "error",
            f"{po}: {supplier} has not acknowledged the order within {hours:g} hours of"
            " its delivery",
            order,
        )
    elif timer.kind == "shipment_due" and not state.shipped:
        draft.raise_exception(
            "late_asn",
            "warning",
            f"{po}: no ASN from {supplier} {draft.tolerances.asn_lead_days} day(s) before the"
            " requested date",
            order,
        )
    elif timer.kind == "receipt_due" and not state.received:
        draft.raise_exception(
            "late_receipt",
            "warning",
            f"{po}: nothing received {draft.tolerances.receipt_overdue_days} day(s) after"
            " the expected delivery",
            order,
        )
