"""855 purchase order acknowledgement <-> `PurchaseOrderAck`.

BAK (purpose 00, type AC, PO number, ack date in BAK04 and BAK09, ack number in BAK08), CUR
when lines carry prices, N1 loops (SU, BY), then per line PO1 (line number, price, BP sku), ACK
(IA accepted, IR rejected, other codes a change; promised quantity, unit, date 068) and NTE
reason; CTT counts the lines.
"""

from __future__ import annotations

from typing import Any

from canonical.orders import PurchaseOrderAck
from canonical.x12.elements import SetReader, SetWriter
from canonical.x12.errors import X12Error
from canonical.x12.parties import Loops, product_ids, read_quantity, write_party

__all__ = ["decode_855", "encode_855"]

PARTIES = {"BY": "buyer", "SU": "supplier", "VN": "supplier", "SE": "supplier"}
STATUS_CODES = {"accept": "IA", "change": "IC", "reject": "IR"}
# ACK01 codes read back (FIELD-NOTES "X12"): accepted, rejected, and the kinds of change.
ACCEPTED = frozenset({"IA", "AC"})
REJECTED = frozenset({"IR", "ID", "R1", "R2", "R3", "R4"})


def encode_855(ack: PurchaseOrderAck, w: SetWriter) -> None:
    currencies = {line.unit_price.currency for line in ack.lines if line.unit_price is not None}
    if len(currencies) > 1:
        raise X12Error(f"an 855 has one currency; the lines carry {sorted(currencies)}")
    w.segment(
        "BAK", "00", "AC", ack.po_number, ack.ack_date, None, None, None, ack.ack_number,
        ack.ack_date,
    )  # fmt: skip
    if currencies:
        w.segment("CUR", "SE", currencies.pop())
    write_party(w, "SU", ack.supplier)
    write_party(w, "BY", ack.buyer)
    for line in ack.lines:
        price = line.unit_price.amount if line.unit_price is not None else None
        w.segment("PO1", line.line_number, None, None, price, None, "BP", line.sku)
        promised = line.promised_quantity
        w.segment(
            "ACK",
            STATUS_CODES[line.status],
            promised.value if promised is not None else None,
            w.profile.their_uom(promised.uom) if promised is not None else None,
            "068" if line.promised_date is not None else None,
            line.promised_date,
        )
        if line.reason is not None:
            w.segment("NTE", "LIN", line.reason)
    w.segment("CTT", len(ack.lines))


def decode_855(r: SetReader) -> list[PurchaseOrderAck]:
    bak = r.first("BAK")
    doc: dict[str, Any] = {
        "po_number": r.text(bak, 3, "$.po_number", required=True),
        "ack_date": r.date(bak, 9, "$.ack_date") or r.date(bak, 4, "$.ack_date", required=True),
        "lines": [],
    }
    ack_number = r.text(bak, 8, "$.ack_number")
    if ack_number is not None:
        doc["ack_number"] = ack_number
    loops = Loops(r, doc, PARTIES)
    for seg in loops.segments():
        tag = seg.tag
        if tag == "CUR":
            doc["currency"] = r.text(seg, 2, "$.currency", required=True)
        elif tag == "PO1":
            item, path = loops.new_line("PO1")
            item.update(
                line_number=r.integer(seg, 1, f"{path}.line_number", required=True),
                status="accept",
            )
            loops.unit_price(seg, 4)
            item.update(product_ids(r, seg, 6, path, {"BP": "sku"}))
        elif tag == "ACK" and loops.line is not None:
            item, path = loops.line
            code = r.text(seg, 1, f"{path}.status", required=True) or ""
            item["status"] = (
                "accept" if code in ACCEPTED else "reject" if code in REJECTED else "change"
            )
            promised_quantity = read_quantity(r, seg, 2, 3, f"{path}.promised_quantity")
            if promised_quantity is not None:
                item["promised_quantity"] = promised_quantity
            if seg.element(4) in ("068", "067", "017", ""):
                promised = r.date(seg, 5, f"{path}.promised_date")
                if promised is not None:
                    item["promised_date"] = promised
        elif tag == "NTE" and loops.line is not None:
            loops.line_text(seg, 2, "reason")
    if not doc["lines"]:
        raise r.missing("PO1")
    doc.pop("currency", None)
    if loops.prices:  # lines with prices need the CUR; without any, the ack has no currency
        currency = r.text(r.first("CUR"), 2, required=True)
        for price in loops.prices:
            price["currency"] = currency
    return [r.build(PurchaseOrderAck, doc, bak)]
