"""The supplier's acknowledgement against the order, line by line."""

from __future__ import annotations

import datetime as dt

from actors.workflow.inputs import DocumentArrived
from actors.workflow.rules._draft import Draft
from actors.workflow.state import LineAck
from canonical import DocumentRef, PurchaseOrderAck

__all__ = ["acknowledge"]


def acknowledge(draft: Draft, arrived: DocumentArrived, ack: PurchaseOrderAck) -> None:
    """Record the supplier's answer per line; each difference beyond tolerance is an exception.

    One acknowledgement per order: the same one again changes nothing, another one (a second
    ack number) is a `duplicate_document` and is not applied.
    """
    if not draft.first_seen("purchase_order_ack", ack.po_number, ack):
        return
    ref = DocumentRef(
        document_type="purchase_order_ack",
        document_number=ack.ack_number or ack.po_number,
        message_id=arrived.message_id,
    )
    tolerances = draft.tolerances
    po = ack.po_number
    acks: dict[int, LineAck] = {}
    for answer in ack.lines:
        n = answer.line_number
        line = draft.state.lines.get(n)
        if line is None or line.sku != answer.sku:
            draft.raise_exception(
                "unknown_line",
                "warning",
                f"{po}: the acknowledgement names line {n} ({answer.sku}), which the order"
                " does not have",
                ref,
                line_number=n,
            )
            continue
        promised = answer.promised_quantity
        acks[n] = LineAck(
            status=answer.status,
            quantity=promised.value if promised is not None else None,
            promised_date=answer.promised_date,
            unit_price=answer.unit_price.amount if answer.unit_price is not None else None,
        )
        if answer.status == "reject":
            draft.raise_exception(
                "rejected_line",
                "warning",
                f"{po} line {n} ({line.sku}) rejected: {answer.reason or 'no reason given'}",
                ref,
                line_number=n,
            )
            continue
        if promised is not None and (
            promised.uom != line.uom or not tolerances.quantity_ok(promised.value, line.quantity)
        ):
            draft.raise_exception(
                "quantity_discrepancy",
                "warning",
                f"{po} line {n} ({line.sku}): {promised.value} {promised.uom} promised,"
                f" {line.quantity} {line.uom} ordered",
                ref,
                line_number=n,
            )
        slack = dt.timedelta(days=tolerances.promised_date_slack_days)
        if answer.promised_date is not None and answer.promised_date > line.requested_date + slack:
            draft.raise_exception(
                "promised_date_late",
                "warning",
                f"{po} line {n} ({line.sku}): promised for {answer.promised_date},"
                f" requested for {line.requested_date}",
                ref,
                line_number=n,
            )
        price = answer.unit_price
        if price is not None and (
            price.currency != draft.state.currency
            or not tolerances.price_ok(price.amount, line.unit_price)
        ):
            draft.raise_exception(
                "price_mismatch",
                "warning",
                f"{po} line {n} ({line.sku}): confirmed at {price.amount} {price.currency},"
                f" ordered at {line.unit_price} {draft.state.currency}",
                ref,
                line_number=n,
            )
    draft.update(acks=acks, acknowledged_at=arrived.accepted_at)
    draft.cancel("acknowledgement_due")
    draft.advance("acknowledged", ref)
