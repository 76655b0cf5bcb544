"""856 advance ship notice <-> `AdvanceShipNotice`, the HL tree read by parent pointers.

BSN (purpose 00, ASN number, ship date, time), then HL levels (FIELD-NOTES "X12": HL01 id, HL02
parent, HL03 level, HL04 has children; never read by position):
  S shipment: TD5 (SCAC in TD503), REF*BM bill of lading, DTM*011 shipped, DTM*017 expected
    delivery, N1 ST ship-to and SF supplier loops
  O order: PRF (PO number)
  T tare (pallet) or P pack (carton): MAN*GM (SSCC)
  I item: LIN (LIN01 the PO line, BP sku, a GTIN), SN1 (quantity, unit), REF*LT lot,
    DTM*036 expiry
CTT counts the HL segments.
"""

from __future__ import annotations

from typing import Any

from canonical.shipping import AdvanceShipNotice
from canonical.x12.elements import SetReader, SetWriter
from canonical.x12.parties import Loops, item_ids, product_ids, write_party
from canonical.x12.syntax import Segment

__all__ = ["decode_856", "encode_856"]

PARTIES = {"ST": "ship_to", "SF": "supplier", "SU": "supplier", "VN": "supplier"}
PACK_LEVELS = {"T": "pallet", "P": "carton"}
LEVEL_CODES = {"pallet": "T", "carton": "P"}
# The level each level hangs under.
PARENT_LEVEL = {"O": "S", "T": "O", "P": "O", "I": ("T", "P")}


def encode_856(asn: AdvanceShipNotice, w: SetWriter) -> None:
    w.segment("BSN", "00", asn.asn_number, asn.ship_date, "0000")
    count = 0

    def hl(parent: int | None, level: str, children: bool) -> int:
        nonlocal count
        count += 1
        w.segment("HL", count, parent, level, "1" if children else "0")
        return count

    shipment = hl(None, "S", True)
    if asn.carrier_scac is not None:
        w.segment("TD5", None, "2", asn.carrier_scac)
    if asn.bill_of_lading is not None:
        w.segment("REF", "BM", asn.bill_of_lading)
    w.segment("DTM", "011", asn.ship_date)
    if asn.expected_delivery_date is not None:
        w.segment("DTM", "017", asn.expected_delivery_date)
    write_party(w, "ST", asn.ship_to)
    write_party(w, "SF", asn.supplier)
    for order in asn.orders:
        order_id = hl(shipment, "O", True)
        w.segment("PRF", order.po_number)
        for pack in order.packs:
            pack_id = hl(order_id, LEVEL_CODES[pack.kind], True)
            w.segment("MAN", "GM", pack.sscc)
            for item in pack.items:
                hl(pack_id, "I", False)
                w.segment("LIN", item.po_line_number, *item_ids(item.sku, item.gtin))
                uom = w.profile.their_uom(item.quantity.uom)
                w.segment("SN1", None, item.quantity.value, uom)
                if item.lot_number is not None:
                    w.segment("REF", "LT", item.lot_number)
                if item.expiry_date is not None:
                    w.segment("DTM", "036", item.expiry_date)
    w.segment("CTT", count)


class _Node:
    def __init__(self, segment: Segment, level: str, body: dict[str, Any], path: str) -> None:
        self.segment = segment
        self.level = level
        self.body = body
        self.path = path


def decode_856(r: SetReader) -> list[AdvanceShipNotice]:
    bsn = r.first("BSN")
    doc: dict[str, Any] = {
        "asn_number": r.text(bsn, 2, "$.asn_number", required=True),
        "ship_date": r.date(bsn, 3, "$.ship_date", required=True),
        "orders": [],
    }
    nodes: dict[str, _Node] = {}
    current: _Node | None = None
    loops = Loops(r, doc, PARTIES)
    for seg in r.segments:
        tag = seg.tag
        if tag == "HL":
            r.loop, loops.party = "HL", None
            current = _hl(r, seg, doc, nodes)
        elif current is None:
            continue
        elif current.level == "S":
            _shipment(r, seg, doc, loops)
        elif current.level == "O" and tag == "PRF":
            current.body["po_number"] = r.text(seg, 1, f"{current.path}.po_number", required=True)
        elif current.level in PACK_LEVELS and tag == "MAN":
            current.body["sscc"] = r.text(seg, 2, f"{current.path}.sscc", required=True)
        elif current.level == "I":
            _item(r, seg, current)
    if not nodes:
        raise r.missing("HL", bsn)
    return [r.build(AdvanceShipNotice, doc, bsn)]


def _hl(r: SetReader, seg: Segment, doc: dict[str, Any], nodes: dict[str, _Node]) -> _Node:
    hl_id = r.text(seg, 1, required=True) or ""
    if hl_id in nodes:
        raise r.rejected(seg, 1, code="7", detail=f"HL id {hl_id!r} used twice")
    level = seg.element(3)
    parent_id = seg.element(2)
    if level == "S":
        if parent_id or any(node.level == "S" for node in nodes.values()):
            raise r.rejected(seg, 3, code="7", detail="one shipment level, with no parent")
        node = _Node(seg, level, doc, "$")
    else:
        wanted = PARENT_LEVEL.get(level)
        if wanted is None:
            raise r.rejected(seg, 3, code="7", detail=f"unknown HL level {level!r}")
        parent = nodes.get(parent_id)
        if parent is None:
            raise r.rejected(seg, 2, code="7", detail=f"HL parent {parent_id!r} not seen before")
        if parent.level not in wanted:
            raise r.rejected(
                seg, 2, code="7", detail=f"level {level} cannot hang under {parent.level}"
            )
        if level == "O":
            children, kind = "orders", {}
        elif level in PACK_LEVELS:
            children, kind = "packs", {"kind": PACK_LEVELS[level]}
        else:
            children, kind = "items", {}
        siblings = parent.body.setdefault(children, [])
        body: dict[str, Any] = {**kind}
        siblings.append(body)
        node = _Node(seg, level, body, f"{parent.path}.{children}[{len(siblings) - 1}]")
    nodes[hl_id] = node
    return node


def _shipment(r: SetReader, seg: Segment, doc: dict[str, Any], loops: Loops) -> None:
    if loops.party_segment(seg):
        return
    tag = seg.tag
    if tag == "TD5":
        scac = r.text(seg, 3, "$.carrier_scac")
        if scac is not None:
            doc["carrier_scac"] = scac
    elif tag == "REF" and seg.element(1) == "BM" and loops.party is None:
        doc["bill_of_lading"] = r.text(seg, 2, "$.bill_of_lading")
    elif tag == "DTM" and seg.element(1) == "017":
        doc["expected_delivery_date"] = r.date(seg, 2, "$.expected_delivery_date")


def _item(r: SetReader, seg: Segment, node: _Node) -> None:
    tag, item, path = seg.tag, node.body, node.path
    if tag == "LIN":
        item["po_line_number"] = r.integer(seg, 1, f"{path}.po_line_number", required=True)
        item.update(product_ids(r, seg, 2, path, {"BP": "sku", "GTIN": "gtin"}))
    elif tag == "SN1":
        uom = r.text(seg, 3, f"{path}.quantity.uom") or ""
        item["quantity"] = {
            "value": r.decimal(seg, 2, f"{path}.quantity.value", required=True),
            "uom": r.profile.our_uom(uom),
        }
    elif tag == "REF" and seg.element(1) == "LT":
        item["lot_number"] = r.text(seg, 2, f"{path}.lot_number")
    elif tag == "DTM" and seg.element(1) == "036":
        item["expiry_date"] = r.date(seg, 2, f"{path}.expiry_date")
