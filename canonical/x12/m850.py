"""850 purchase order <-> `PurchaseOrder`.

BEG (number, date), CUR, N1 loops (BY buyer, SU supplier, ST ship-to), then per line PO1
(line number, quantity, unit, price, BP sku and a GTIN), PID description, DTM*002 requested
date; CTT counts the lines. Prices carry no currency: the order's CUR does.
"""

from __future__ import annotations

from typing import Any

from canonical.orders import PurchaseOrder
from canonical.x12.elements import SetReader, SetWriter
from canonical.x12.parties import Loops, item_ids, product_ids, write_item, write_party

__all__ = ["decode_850", "encode_850"]

PARTIES = {"BY": "buyer", "SU": "supplier", "VN": "supplier", "SE": "supplier", "ST": "ship_to"}


def encode_850(order: PurchaseOrder, w: SetWriter) -> None:
    w.segment("BEG", "00", "SA", order.po_number, None, order.order_date)
    w.segment("CUR", "BY", order.currency)
    write_party(w, "BY", order.buyer)
    write_party(w, "SU", order.supplier)
    if order.ship_to is not None:
        write_party(w, "ST", order.ship_to)
    for line in order.lines:
        write_item(w, "PO1", line, item_ids(line.sku, line.gtin))
        w.segment("DTM", "002", line.requested_date)
    w.segment("CTT", len(order.lines))


def decode_850(r: SetReader) -> list[PurchaseOrder]:
    beg = r.first("BEG")
    r.first("CUR")  # the order's currency: every price depends on it
    doc: dict[str, Any] = {
        "po_number": r.text(beg, 3, "$.po_number", required=True),
        "order_date": r.date(beg, 5, "$.order_date", required=True),
        "lines": [],
    }
    loops = Loops(r, doc, PARTIES)
    for seg in loops.segments():
        tag = seg.tag
        if tag == "CUR":
            doc["currency"] = r.text(seg, 2, "$.currency", required=True)
        elif tag == "PO1":
            item, path = loops.new_line("PO1")
            item.update(
                line_number=r.integer(seg, 1, f"{path}.line_number", required=True),
                quantity={
                    "value": r.decimal(seg, 2, f"{path}.quantity.value", required=True),
                    "uom": r.profile.our_uom(r.text(seg, 3, f"{path}.quantity.uom") or ""),
                },
                unit_price={
                    "amount": r.decimal(seg, 4, f"{path}.unit_price.amount", required=True)
                },
            )
            item.update(product_ids(r, seg, 6, path, {"BP": "sku", "GTIN": "gtin"}))
        elif tag == "PID" and loops.line is not None:
            loops.line_text(seg, 5, "description")
        elif tag == "DTM" and loops.line is not None and seg.element(1) == "002":
            loops.requested_date(seg)
    if not doc["lines"]:
        raise r.missing("PO1")
    if "currency" in doc:  # else the currency is missing, the CUR reported so
        for item in doc["lines"]:
            item["unit_price"]["currency"] = doc["currency"]
    return [r.build(PurchaseOrder, doc, beg)]
