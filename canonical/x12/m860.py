"""860 purchase order change <-> `PurchaseOrderChange`.

BCH (purpose 04, PO number, change sequence in BCH05, change date in BCH06 and BCH11), CUR,
NTE reason, N1 loops (BY, SU), then per line POC (line number, change code AI add / CA change /
DI delete, quantity, unit, price, BP sku) and DTM*002; CTT counts the lines.
"""

from __future__ import annotations

from typing import Any

from canonical.orders import PurchaseOrderChange
from canonical.x12.elements import SetReader, SetWriter
from canonical.x12.parties import (
    PARTY_DETAIL,
    product_ids,
    read_party,
    read_party_detail,
    write_party,
)

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
    party: tuple[dict[str, Any], str] | None = None
    line: tuple[dict[str, Any], str] | None = None
    prices: list[dict[str, Any]] = []
    for seg in r.segments:
        tag = seg.tag
        if tag == "CUR":
            doc["currency"] = r.text(seg, 2, "$.currency", required=True)
        elif tag == "NTE" and line is None and "reason" not in doc:
            doc["reason"] = r.text(seg, 2, "$.reason")
        elif tag == "N1" and seg.element(1) in PARTIES:
            r.loop, line = "N1", None
            path = "$." + PARTIES[seg.element(1)]
            doc[PARTIES[seg.element(1)]] = read_party(r, seg, path)
            party = (doc[PARTIES[seg.element(1)]], path)
        elif tag in PARTY_DETAIL and party is not None and line is None:
            read_party_detail(r, seg, *party)
        elif tag == "POC":
            r.loop, party = "POC", None
            path = f"$.lines[{len(doc['lines'])}]"
            code = r.text(seg, 2, f"{path}.change", required=True)
            kind = CHANGES.get(code or "")
            if kind is None:
                raise r.rejected(seg, 2, code="7", detail=f"unknown change code {code!r}")
            item: dict[str, Any] = {
                "line_number": r.integer(seg, 1, f"{path}.line_number", required=True),
                "change": kind,
            }
            value = r.decimal(seg, 3, f"{path}.quantity.value")
            if value is not None:
                uom = r.text(seg, 5, f"{path}.quantity.uom") or ""
                item["quantity"] = {"value": value, "uom": r.profile.our_uom(uom)}
            amount = r.decimal(seg, 6, f"{path}.unit_price.amount")
            if amount is not None:
                item["unit_price"] = {"amount": amount}
                prices.append(item["unit_price"])
            item.update(product_ids(r, seg, 8, path, {"BP": "sku"}))
            doc["lines"].append(item)
            line = (item, path)
        elif tag == "DTM" and line is not None and seg.element(1) == "002":
            line[0]["requested_date"] = r.date(seg, 2, f"{line[1]}.requested_date")
    if not doc["lines"]:
        raise r.missing("POC")
    if "currency" in doc:
        for price in prices:
            price["currency"] = doc["currency"]
    return [r.build(PurchaseOrderChange, doc, bch)]
