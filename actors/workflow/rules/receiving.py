"""A goods receipt against what was shipped: short, over and damaged become a discrepancy."""

from __future__ import annotations

from decimal import Decimal

from actors.workflow.inputs import DocumentArrived
from actors.workflow.rules._draft import Draft
from canonical import DocumentRef, GoodsReceipt, ReceiptDiscrepancy, ReceiptDiscrepancyLine

__all__ = ["receive", "waits_for_shipment"]

_ZERO = Decimal(0)


def waits_for_shipment(draft: Draft, receipt: GoodsReceipt) -> bool:
    """Whether the receipt came before the ASN it is compared with (it is parked until then)."""
    asns = draft.state.asns
    return receipt.asn_number not in asns if receipt.asn_number else not asns


def receive(draft: Draft, arrived: DocumentArrived, receipt: GoodsReceipt) -> None:
    """Compare each received line with what its ASN (else every ASN so far) shipped.

    Received quantities count damaged units, as the receipt does; what the invoice may bill is
    what arrived undamaged.
    """
    if not draft.first_seen("goods_receipt", receipt.receipt_number, receipt):
        return
    state = draft.state
    ref = DocumentRef(
        document_type="goods_receipt",
        document_number=receipt.receipt_number,
        message_id=arrived.message_id,
    )
    if receipt.asn_number in state.asns:
        expected = dict(state.asns[receipt.asn_number or ""])
    else:  # no ASN named (or it never came): what was shipped and is not received yet
        expected = {
            n: max(q - state.received.get(n, _ZERO), _ZERO) for n, q in state.shipped.items()
        }
    received = dict(state.received)
    gaps: list[ReceiptDiscrepancyLine] = []
    for counted in receipt.lines:
        n = counted.po_line_number or state.line_number_of(counted.sku)
        line = state.lines.get(n) if n is not None else None
        if n is None or line is None or line.sku != counted.sku:
            draft.raise_exception(
                "unknown_line",
                "warning",
                f"{state.po_number}: receipt {receipt.receipt_number} counts {counted.sku},"
                " which the order does not have",
                ref,
                line_number=n,
            )
            continue
        wanted = expected.pop(n, _ZERO)
        got = counted.received_quantity
        received[n] = received.get(n, _ZERO) + got - counted.damaged_quantity
        if got != wanted or counted.damaged_quantity:
            gaps.append(_gap(n, line.sku, counted.uom, wanted, got, counted.damaged_quantity))
    for n, wanted in sorted(expected.items()):
        if wanted:  # shipped, and not on the receipt at all
            line = state.lines[n]
            gaps.append(_gap(n, line.sku, line.uom, wanted, _ZERO, _ZERO))
    draft.update(received=received, receipts=(*state.receipts, receipt.receipt_number))
    if gaps and state.buyer is not None and state.supplier_party is not None:
        discrepancy_id = draft.emit(
            ReceiptDiscrepancy(
                po_number=state.po_number,
                receipt_number=receipt.receipt_number,
                asn_number=receipt.asn_number,
                buyer=state.buyer,
                supplier=state.supplier_party,
                location_id=receipt.location_id,
                received_at=receipt.received_at,
                lines=tuple(gaps),
            )
        )
        draft.remember(
            discrepancy_id,
            "receipt_discrepancy",
            f"receipt {receipt.receipt_number}: "
            + "; ".join(
                f"line {g.po_line_number} expected {g.expected_quantity} got"
                f" {g.received_quantity} (damaged {g.damaged_quantity})"
                for g in gaps
            ),
        )
    draft.cancel("receipt_due")
    draft.advance("received", ref)


def _gap(
    n: int, sku: str, uom: str, wanted: Decimal, got: Decimal, damaged: Decimal
) -> ReceiptDiscrepancyLine:
    return ReceiptDiscrepancyLine(
        po_line_number=n,
        sku=sku,
        uom=uom,
        expected_quantity=wanted,
        received_quantity=got,
        short_quantity=max(wanted - got, _ZERO),
        over_quantity=max(got - wanted, _ZERO),
        damaged_quantity=damaged,
    )
