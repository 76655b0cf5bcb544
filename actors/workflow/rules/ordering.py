"""The order itself: released, changed, and delivered to the supplier (or not)."""

from __future__ import annotations

import datetime as dt

import msgspec

from actors.workflow.inputs import DeliveryOutcome, DocumentArrived
from actors.workflow.rules._draft import Draft, day_start
from actors.workflow.state import OrderLine
from canonical import DocumentRef, PurchaseOrder, PurchaseOrderChange, PurchaseOrderChangeLine

__all__ = ["change", "delivery", "release"]


def release(draft: Draft, arrived: DocumentArrived, order: PurchaseOrder) -> None:
    """The ERP released the order: the thread starts (or its parked inputs can go on)."""
    if not draft.first_seen("purchase_order", order.po_number, order):
        return
    draft.update(
        lines={
            line.line_number: OrderLine(
                line_number=line.line_number,
                sku=line.sku,
                quantity=line.quantity.value,
                uom=line.quantity.uom,
                unit_price=line.unit_price.amount,
                requested_date=line.requested_date,
            )
            for line in order.lines
        },
        buyer=order.buyer,
        supplier_party=order.supplier,
        ship_to=order.ship_to,
        currency=order.currency,
        correlation_id=arrived.correlation_id,
    )
    draft.advance("released")
    earliest = min(line.requested_date for line in order.lines)
    tolerances = draft.tolerances
    draft.arm("shipment_due", day_start(earliest - dt.timedelta(days=tolerances.asn_lead_days)))
    draft.arm(
        "receipt_due", day_start(earliest + dt.timedelta(days=tolerances.receipt_overdue_days))
    )


def change(draft: Draft, arrived: DocumentArrived, order_change: PurchaseOrderChange) -> None:
    """The ERP changed the order: lines added, changed or cancelled."""
    if not draft.first_seen("purchase_order_change", str(order_change.change_number), order_change):
        return
    lines = dict(draft.state.lines)
    for changed in order_change.lines:
        line = lines.get(changed.line_number)
        added = _added(changed) if changed.change == "add" and line is None else None
        if added is not None:
            lines[changed.line_number] = added
        elif line is None or line.sku != changed.sku or changed.change == "add":
            draft.raise_exception(
                "unknown_line",
                "warning",
                f"change {order_change.change_number} of {order_change.po_number}:"
                f" {changed.change} line {changed.line_number} ({changed.sku}) does not fit"
                " the order",
                _ref(order_change, arrived),
                line_number=changed.line_number,
            )
        elif changed.change == "cancel":
            lines[changed.line_number] = _replace(line, cancelled=True)
        else:
            lines[changed.line_number] = _replace(
                line,
                quantity=changed.quantity.value if changed.quantity else line.quantity,
                unit_price=changed.unit_price.amount if changed.unit_price else line.unit_price,
                requested_date=changed.requested_date or line.requested_date,
            )
    draft.update(lines=lines, changes=(*draft.state.changes, order_change.change_number))


def delivery(draft: Draft, outcome: DeliveryOutcome) -> None:
    """The order reached the supplier (the acknowledgement clock starts), or died on the way."""
    if outcome.document_type != "purchase_order":
        return
    ref = DocumentRef(
        document_type="purchase_order",
        document_number=draft.state.po_number,
        message_id=outcome.delivered_message_id,
    )
    if outcome.outcome == "dead":
        draft.raise_exception(
            "delivery_failed",
            "error",
            f"{draft.state.po_number} could not be delivered to {outcome.partner_id}:"
            f" {outcome.reason or 'gave up'}",
            ref,
        )
        return
    if draft.state.delivered_at is not None:
        return
    draft.update(delivered_at=outcome.settled_at)
    draft.advance("sent", ref)
    if not draft.state.acknowledged:
        draft.arm("acknowledgement_due", outcome.settled_at + draft.tolerances.ack_sla_hours * 3600)


def _ref(document: PurchaseOrderChange, arrived: DocumentArrived) -> DocumentRef:
    return DocumentRef(
        document_type="purchase_order_change",
        document_number=document.po_number,
        message_id=arrived.message_id,
    )


def _added(changed: PurchaseOrderChangeLine) -> OrderLine | None:
    # The document's own rule makes an "add" carry all three; None only if it somehow did not.
    if changed.quantity is None or changed.unit_price is None or changed.requested_date is None:
        return None
    return OrderLine(
        line_number=changed.line_number,
        sku=changed.sku,
        quantity=changed.quantity.value,
        uom=changed.quantity.uom,
        unit_price=changed.unit_price.amount,
        requested_date=changed.requested_date,
    )


def _replace(line: OrderLine, **changes: object) -> OrderLine:
    return msgspec.structs.replace(line, **changes)
