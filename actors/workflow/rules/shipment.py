"""An ASN against the order and its acknowledgement, counted across every ASN so far."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from actors.workflow.inputs import DocumentArrived
from actors.workflow.rules._draft import Draft, day_start
from canonical import (
    AdvanceShipNotice,
    DocumentRef,
    InboundShipment,
    InboundShipmentLine,
    Quantity,
)

__all__ = ["ship"]


def ship(draft: Draft, arrived: DocumentArrived, asn: AdvanceShipNotice) -> None:
    """Count what this ASN ships for the order; a valid one tells the warehouse it is coming.

    Split shipments are ordinary: quantities add up across ASNs, and only a total beyond the
    acknowledged (else ordered) quantity plus tolerance is an over-shipment.
    """
    state = draft.state
    order = next(o for o in asn.orders if o.po_number == state.po_number)
    if not draft.first_seen("advance_ship_notice", asn.asn_number, asn):
        return
    ref = DocumentRef(
        document_type="advance_ship_notice",
        document_number=asn.asn_number,
        message_id=arrived.message_id,
    )
    po = state.po_number
    this: dict[int, Decimal] = {}
    for pack in order.packs:
        for item in pack.items:
            n = item.po_line_number
            line = state.lines.get(n)
            if line is None or line.sku != item.sku:
                draft.raise_exception(
                    "unknown_line",
                    "warning",
                    f"{po}: ASN {asn.asn_number} ships line {n} ({item.sku}), which the order"
                    " does not have",
                    ref,
                    line_number=n,
                )
                continue
            this[n] = this.get(n, Decimal(0)) + item.quantity.value
    if not state.acknowledged:
        draft.raise_exception(
            "shipped_before_acknowledged",
            "warning",
            f"{po}: ASN {asn.asn_number} arrived before the order was acknowledged",
            ref,
        )
    shipped = dict(state.shipped)
    for n, quantity in sorted(this.items()):
        line = state.lines[n]
        shipped[n] = shipped.get(n, Decimal(0)) + quantity
        ack = state.acks.get(n)
        limit = line.quantity
        if ack is not None:
            limit = Decimal(0) if ack.status == "reject" else (ack.quantity or Decimal(0))
        if line.cancelled:
            limit = Decimal(0)
        if draft.tolerances.quantity_over(shipped[n], limit):
            draft.raise_exception(
                "over_shipment",
                "warning",
                f"{po} line {n} ({line.sku}): {shipped[n]} {line.uom} shipped so far,"
                f" {limit} {'acknowledged' if ack is not None else 'ordered'}",
                ref,
                line_number=n,
            )
        if ack is not None and ack.promised_date is not None and asn.ship_date > ack.promised_date:
            draft.raise_exception(
                "late_shipment",
                "warning",
                f"{po} line {n} ({line.sku}): shipped {asn.ship_date},"
                f" promised for {ack.promised_date}",
                ref,
                line_number=n,
            )
    draft.update(shipped=shipped, asns={**state.asns, asn.asn_number: this})
    if this and state.buyer is not None and state.supplier_party is not None:
        draft.emit(
            InboundShipment(
                po_number=po,
                asn_number=asn.asn_number,
                buyer=state.buyer,
                supplier=state.supplier_party,
                ship_to=asn.ship_to,
                ship_date=asn.ship_date,
                expected_delivery_date=asn.expected_delivery_date,
                carrier_scac=asn.carrier_scac,
                bill_of_lading=asn.bill_of_lading,
                lines=tuple(
                    InboundShipmentLine(
                        po_line_number=n,
                        sku=state.lines[n].sku,
                        quantity=Quantity(value=quantity, uom=state.lines[n].uom),
                        shipped_to_date=shipped[n],
                        ordered_quantity=state.lines[n].quantity,
                    )
                    for n, quantity in sorted(this.items())
                ),
            )
        )
    draft.cancel("shipment_due")
    if not state.received:
        arrives = asn.expected_delivery_date or asn.ship_date
        overdue = dt.timedelta(days=draft.tolerances.receipt_overdue_days)
        draft.arm("receipt_due", day_start(arrives + overdue))
    draft.advance("shipped", ref)
