"""The three-way match: the invoice against the order's prices and the quantities received."""

from __future__ import annotations

from decimal import Decimal

from actors.workflow.inputs import DocumentArrived
from actors.workflow.rules._draft import Draft
from canonical import DocumentRef, Invoice, InvoiceMatch, MatchIssue
from canonical.events import MatchResult

__all__ = ["match"]

_ZERO = Decimal(0)


def match(draft: Draft, arrived: DocumentArrived, invoice: Invoice) -> None:
    """Match the invoice and publish the result: matched, or held with every reason.

    Held invoices bill nothing in the thread's counts: the corrected invoice that follows is
    matched against the same receipts. A second invoice with no receipt since the last matched
    one is held as a duplicate.
    """
    if not draft.first_seen("invoice", invoice.invoice_number, invoice):
        return
    state = draft.state
    tolerances = draft.tolerances
    issues: list[MatchIssue] = []
    if invoice.currency != state.currency:
        issues.append(
            MatchIssue(
                reason="currency",
                description=f"invoiced in {invoice.currency}, ordered in {state.currency}",
            )
        )
    new_receipts = tuple(r for r in state.receipts if r not in state.receipts_invoiced)
    if state.receipts_invoiced and not new_receipts:
        issues.append(
            MatchIssue(
                reason="duplicate_invoice",
                description="no goods received since the last matched invoice",
            )
        )
    invoiced = dict(state.invoiced)
    for billed in invoice.lines:
        n = billed.po_line_number or state.line_number_of(billed.sku)
        line = state.lines.get(n) if n is not None else None
        if n is None or line is None or line.sku != billed.sku:
            issues.append(
                MatchIssue(
                    reason="unknown_line",
                    line_number=billed.line_number,
                    description=f"{billed.sku} is not on the order",
                )
            )
            continue
        price = billed.unit_price.amount
        if not tolerances.price_ok(price, line.unit_price):
            issues.append(
                MatchIssue(
                    reason="price",
                    line_number=billed.line_number,
                    description=f"unit price {price} {billed.unit_price.currency},"
                    f" ordered at {line.unit_price} {state.currency}",
                )
            )
        invoiced[n] = invoiced.get(n, _ZERO) + billed.quantity.value
        received = state.received.get(n, _ZERO)
        if tolerances.quantity_over(invoiced[n], received):
            issues.append(
                MatchIssue(
                    reason="quantity_not_received",
                    line_number=billed.line_number,
                    description=f"{invoiced[n]} {line.uom} billed so far, {received} received",
                )
            )
    result: MatchResult = "held" if issues else "matched"
    buyer, supplier = state.buyer, state.supplier_party
    ref = DocumentRef(
        document_type="invoice",
        document_number=invoice.invoice_number,
        message_id=arrived.message_id,
    )
    draft.update(invoices=(*state.invoices, invoice.invoice_number))
    if buyer is not None and supplier is not None:
        match_id = draft.emit(
            InvoiceMatch(
                invoice_number=invoice.invoice_number,
                po_number=state.po_number,
                buyer=buyer,
                supplier=supplier,
                result=result,
                issues=tuple(issues),
                matched_at=draft.now,
            )
        )
        if issues:
            draft.remember(
                match_id,
                "invoice_mismatch",
                f"invoice {invoice.invoice_number} held: "
                + "; ".join(issue.description for issue in issues),
            )
    draft.advance("invoiced", ref)
    if issues:
        return
    draft.update(invoiced=invoiced, receipts_invoiced=(*state.receipts_invoiced, *new_receipts))
    draft.advance("matched", ref)
    open_lines = [line for line in state.lines.values() if not line.cancelled]
    if all(invoiced.get(line.line_number, _ZERO) >= line.quantity for line in open_lines):
        draft.cancel("acknowledgement_due", "shipment_due", "receipt_due")
        draft.advance("closed", ref)
