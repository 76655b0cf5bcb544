"""860 purchase order change <-> `PurchaseOrderChange`.

BCH (purpose 04, PO number, change sequence in BCH05, change date in BCH06 and BCH11), CUR,
NTE reason, N1 loops (BY, SU), then per line POC (line number, change code AI add / CA change /
DI delete, quantity, unit, price, BP sku) and DTM*002; CTT counts the lines.
"""

from __future__ import annotations

from typing import Any

from canonical.orders import PurchaseOrderChange
from canonical.x12.elements import SetReader, SetWriter
from canonical.x12.parties import Loops, product_ids, read_quantity, write_party

__all__ = ["decode_860", "encode_860"]

PARTIES = {"BY": "buyer", "SU": "supplier", "VN": "supplier", "SE": "supplier"}
CHANGE_CODES = {"add": "AI", "change": "CA", "cancel": "DI"}
# Codes read back: the specific changes (quantity increase, price change...) are changes.
CHANGES = {
    "AI": "add",
    "CA": "change",
    "CT": "change",
    "PC": "change",
    "QD": "change",
    "QI": "change",
    "RZ": "change",
    "DI": "cancel",
    "RQ": "cancel",
}


def encode_860(change: PurchaseOrderChange, w: SetWriter) -> None:
    w.segment(
        "BCH", "04", "SA", change.po_number, None, change.change_number, change.change_date,
        None, None, None, None, change.change_date,
    )  # fmt: skip
    w.segment("CUR", "BY", change.currency)
    if change.reason is not None:
        w.segment("NTE", "GEN", change.reason)
    write_party(w, "BY", change.buyer)
    write_party(w, "SU", change.supplier)
    for line in change.lines:
        quantity = line.quantity
        price = line.unit_price
        w.segment(
            "POC",
            line.line_number,
            CHANGE_CODES[line.change],
            quantity.value if quantity is not None else None,
            None,
            w.profile.their_uom(quantity.uom) if quantity is not None else None,
            price.amount if price is not None else None,
            None,
            "BP",
            line.sku,
        )
        if line.requested_date is not None:
            w.segment("DTM", "002", line.requested_date)
    w.segment("CTT", len(change.lines))


def decode_860(r: SetReader) -> list[PurchaseOrderChange]:
    bch = r.first("BCH")
    r.first("CUR")  # the order's currency: every price depends on it
    doc: dict[str, Any] = {
        "po_number": r.text(bch, 3, "$.po_number", required=True),
        "change_number": r.integer(bch, 5, "$.change_number", required=True),
        "change_date": r.date(bch, 11, "$.change_date") or r.date(bch, 6, "$.change_date"),
        "lines": [],
    }
    loops = Loops(r, doc, PARTIES)
    for seg in loops.segments():
        tag = seg.tag
        if tag == "CUR":
            doc["currency"] = r.text(seg, 2, "$.currency", required=True)
        elif tag == "NTE" and loops.line is None and "reason" not in doc:
            doc["reason"] = r.text(seg, 2, "$.reason")
        elif tag == "POC":
            item, path = loops.new_line("POC")
            code = r.text(seg, 2, f"{path}.change", required=True)
            kind = CHANGES.get(code or "")
            if kind is None:
                raise r.rejected(seg, 2, code="7", detail=f"unknown change code {code!r}")
            item.update(
                line_number=r.integer(seg, 1, f"{path}.line_number", required=True),
                change=kind,
            )
            quantity = read_quantity(r, seg, 3, 5, f"{path}.quantity")
            if quantity is not None:
                item["quantity"] = quantity
            loops.unit_price(seg, 6)
            item.update(product_ids(r, seg, 8, path, {"BP": "sku"}))
        elif tag == "DTM" and loops.line is not None and seg.element(1) == "002":
            loops.requested_date(seg)
    if not doc["lines"]:
        raise r.missing("POC")
    if "currency" in doc:
        for price in loops.prices:
            price["currency"] = doc["currency"]
    return [r.build(PurchaseOrderChange, doc, bch)]
