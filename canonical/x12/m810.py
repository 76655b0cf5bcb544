"""810 invoice <-> `Invoice`.

BIG (invoice date, number, PO number in BIG04), CUR, N1 loops (SU supplier, BT bill-to), ITD
net due date (ITD06), then per line IT1 (line number, quantity, unit, price, BP sku, PL the PO
line, a GTIN), PID description and AMT*1 the line's amount (so its decimal places travel);
then TDS (total, implied two decimals), TXI tax, SAC*C charges (implied two decimals), CTT.

Read back, the subtotal is the sum of the lines and the total subtotal + tax + charges, as the
canonical invoice requires; TDS must agree with that total to the cent.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from typing import Any

from canonical.invoices import Invoice
from canonical.x12.elements import SetReader, SetWriter
from canonical.x12.errors import X12Error
from canonical.x12.parties import Loops, item_ids, product_ids, write_item, write_party

__all__ = ["decode_810", "encode_810"]

PARTIES = {"SU": "supplier", "VN": "supplier", "SE": "supplier", "RE": "supplier", "BT": "bill_to"}
CENT = Decimal("0.01")
# The reader bounds every number (15 integer digits, 6 places): products and sums of them fit.
EXACT = Context(prec=60, rounding=ROUND_HALF_UP)


def _cents(amount: Decimal) -> int:
    return int((amount / CENT).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def encode_810(invoice: Invoice, w: SetWriter) -> None:
    w.segment("BIG", invoice.invoice_date, invoice.invoice_number, None, invoice.po_number)
    w.segment("CUR", "SE", invoice.currency)
    write_party(w, "SU", invoice.supplier)
    write_party(w, "BT", invoice.bill_to)
    if invoice.due_date is not None:
        w.segment("ITD", "01", "3", None, None, None, invoice.due_date)
    for line in invoice.lines:
        po_line = ("PL", str(line.po_line_number)) if line.po_line_number is not None else ()
        write_item(w, "IT1", line, item_ids(line.sku, line.gtin, *po_line))
        w.segment("AMT", "1", line.amount.amount)
    w.segment("TDS", _cents(invoice.total.amount))
    if invoice.tax is not None:
        w.segment("TXI", "TX", invoice.tax.amount)
    if invoice.charges is not None:
        charges = invoice.charges.amount
        if charges != charges.quantize(CENT):
            raise X12Error(f"SAC05 carries whole cents; charges are {charges}")
        w.segment("SAC", "C", "D240", None, None, _cents(charges))
    w.segment("CTT", len(invoice.lines))


def decode_810(r: SetReader) -> list[Invoice]:
    big = r.first("BIG")
    doc: dict[str, Any] = {
        "invoice_date": r.date(big, 1, "$.invoice_date", required=True),
        "invoice_number": r.text(big, 2, "$.invoice_number", required=True),
        "po_number": r.text(big, 4, "$.po_number", required=True),
        "lines": [],
    }
    currency = r.text(r.first("CUR"), 2, "$.currency", required=True)
    doc["currency"] = currency
    loops = Loops(r, doc, PARTIES)
    tds = None
    for seg in loops.segments():
        tag = seg.tag
        if tag == "ITD":
            due = r.date(seg, 6, "$.due_date")
            if due is not None:
                doc["due_date"] = due
        elif tag == "IT1":
            item, path = loops.new_line("IT1")
            quantity = r.decimal(seg, 2, f"{path}.quantity.value", required=True)
            price = r.decimal(seg, 4, f"{path}.unit_price.amount", required=True)
            item.update(
                line_number=r.integer(seg, 1, f"{path}.line_number", required=True),
                quantity={
                    "value": quantity,
                    "uom": r.profile.our_uom(r.text(seg, 3, f"{path}.quantity.uom") or ""),
                },
                unit_price={"amount": price, "currency": currency},
                amount={"amount": _extended(quantity, price), "currency": currency},
            )
            ids = product_ids(
                r, seg, 6, path, {"BP": "sku", "PL": "po_line_number", "GTIN": "gtin"}
            )
            if "po_line_number" in ids:
                ids["po_line_number"] = r.integer(
                    seg, _element_of(seg, "PL") + 1, f"{path}.po_line_number"
                )
            item.update(ids)
        elif tag == "PID" and loops.line is not None:
            loops.line_text(seg, 5, "description")
        elif tag == "AMT" and loops.line is not None and seg.element(1) == "1":
            item, path = loops.line
            item["amount"]["amount"] = r.decimal(seg, 2, f"{path}.amount.amount", required=True)
        elif tag == "TDS":
            r.loop, loops.line = None, None
            tds = (seg, r.decimal(seg, 1, required=True, implied=2))
        elif tag == "TXI" and seg.element(1) == "TX":
            doc["tax"] = {"amount": r.decimal(seg, 2, "$.tax.amount"), "currency": currency}
        elif tag == "SAC" and seg.element(1) == "C":
            amount = r.decimal(seg, 5, "$.charges.amount", implied=2)
            doc["charges"] = {"amount": amount, "currency": currency}
    with localcontext(EXACT):
        subtotal = sum((ln["amount"]["amount"] or Decimal(0) for ln in doc["lines"]), Decimal(0))
        total = subtotal
        for extra in ("tax", "charges"):
            if extra in doc and doc[extra]["amount"] is not None:
                total += doc[extra]["amount"]
        rounded = total.quantize(CENT)
    doc["subtotal"] = {"amount": subtotal, "currency": currency}
    doc["total"] = {"amount": total, "currency": currency}
    if not doc["lines"]:
        raise r.missing("IT1")
    if tds is None:
        raise r.missing("TDS")
    if tds[1] != rounded:
        raise r.rejected(tds[0], 1, code="7", detail=f"TDS01 is not the invoice total {total}")
    return [r.build(Invoice, doc, big)]


def _extended(quantity: Decimal | None, price: Decimal | None) -> Decimal | None:
    if quantity is None or price is None:
        return None
    with localcontext(EXACT):
        return (quantity * price).quantize(CENT)


def _element_of(segment: Any, qualifier: str) -> int:
    n = 6
    while n < len(segment.elements) and segment.element(n) != qualifier:
        n += 2
    return n
