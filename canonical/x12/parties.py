"""The pieces every mapping shares: N1 party loops and the product id pairs of line items.

Writing, `write_party` and `write_item`; reading, `Loops` follows which N1 party or line item
the segments of a set belong to, so that each mapping reads only its own segments.

Party: `N1*{entity}*{name}*92*{party id}`, then `N3` (address lines), `N4` (city, region,
postal code, country) and `REF*UL*{GLN}`: the gateway's convention for a party's GLN beside the
id the buyer assigned. Party ids and units pass through the profile's maps both ways.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from canonical.common import PartyRef
from canonical.invoices import InvoiceLine
from canonical.orders import PurchaseOrderLine
from canonical.x12.elements import SetReader, SetWriter
from canonical.x12.syntax import Segment

__all__ = [
    "GTIN_QUALIFIERS",
    "Loops",
    "gtin_qualifier",
    "item_ids",
    "product_ids",
    "read_party",
    "read_party_detail",
    "read_quantity",
    "write_item",
    "write_party",
]

# Product id qualifiers read as a GTIN: UPC (12), EAN (13), GTIN-14, and the generic "UK".
GTIN_QUALIFIERS = frozenset({"UP", "EN", "UK", "UA"})
PARTY_DETAIL = frozenset({"N2", "N3", "N4", "REF", "PER"})


def gtin_qualifier(gtin: str) -> str:
    return {12: "UP", 13: "EN"}.get(len(gtin), "UK")


def item_ids(sku: str, gtin: str | None, *extra: str) -> list[str]:
    """A line item's (qualifier, id) pairs: BP the sku, the `extra` pairs, then its GTIN."""
    ids = ["BP", sku, *extra]
    if gtin is not None:
        ids += [gtin_qualifier(gtin), gtin]
    return ids


def write_item(
    writer: SetWriter, tag: str, line: PurchaseOrderLine | InvoiceLine, ids: list[str]
) -> None:
    """PO1/IT1 (line number, quantity, unit, price, the id pairs) and the PID description."""
    uom = writer.profile.their_uom(line.quantity.uom)
    writer.segment(
        tag, line.line_number, line.quantity.value, uom, line.unit_price.amount, None, *ids
    )
    if line.description is not None:
        writer.segment("PID", "F", None, None, None, line.description)


def write_party(writer: SetWriter, entity: str, party: PartyRef) -> None:
    profile = writer.profile
    writer.segment("N1", entity, party.name, "92", profile.their_party(party.party_id))
    if party.address is not None:
        address = party.address
        writer.segment("N3", address.line1, address.line2)
        writer.segment("N4", address.city, address.region, address.postal_code, address.country)
    if party.gln is not None:
        writer.segment("REF", "UL", party.gln)


def read_party(reader: SetReader, n1: Segment, path: str) -> dict[str, Any]:
    """Start a party from its N1; N3/N4/REF that follow go through `read_party_detail`."""
    party_id = reader.text(n1, 4, f"{path}.party_id", required=True)
    assert party_id is not None
    party: dict[str, Any] = {"party_id": reader.profile.our_party(party_id)}
    name = reader.text(n1, 2, f"{path}.name")
    if name is not None:
        party["name"] = name
    return party


def read_party_detail(
    reader: SetReader, segment: Segment, party: dict[str, Any], path: str
) -> None:
    if segment.tag == "N3":
        address = party.setdefault("address", {})
        _put(address, "line1", reader.text(segment, 1, f"{path}.address.line1"))
        _put(address, "line2", reader.text(segment, 2, f"{path}.address.line2"))
    elif segment.tag == "N4":
        address = party.setdefault("address", {})
        _put(address, "city", reader.text(segment, 1, f"{path}.address.city"))
        _put(address, "region", reader.text(segment, 2, f"{path}.address.region"))
        _put(address, "postal_code", reader.text(segment, 3, f"{path}.address.postal_code"))
        _put(address, "country", reader.text(segment, 4, f"{path}.address.country"))
    elif segment.tag == "REF" and segment.element(1) == "UL":
        _put(party, "gln", reader.text(segment, 2, f"{path}.gln"))


def product_ids(
    reader: SetReader, segment: Segment, start: int, path: str, fields: dict[str, str]
) -> dict[str, Any]:
    """Read the (qualifier, id) pairs from element `start` on into `fields`' names.

    `fields` maps a qualifier to the canonical field it fills ("BP" -> "sku"); GTIN qualifiers
    fill "gtin" when `fields` has one. The first pair of a kind wins.
    """
    found: dict[str, Any] = {}
    n = start
    while n < len(segment.elements):
        qualifier = segment.element(n)
        name = fields.get(qualifier)
        if name is None and qualifier in GTIN_QUALIFIERS and "gtin" in fields.values():
            name = "gtin"
        if name is not None and name not in found:
            value = reader.text(segment, n + 1, f"{path}.{name}")
            if value is not None:
                found[name] = value
        n += 2
    return found


def read_quantity(
    reader: SetReader, segment: Segment, n: int, uom_at: int, path: str
) -> dict[str, Any] | None:
    """An optional quantity: its value at element `n`, its unit at `uom_at`; None without one."""
    value = reader.decimal(segment, n, f"{path}.value")
    if value is None:
        return None
    uom = reader.text(segment, uom_at, f"{path}.uom") or ""
    return {"value": value, "uom": reader.profile.our_uom(uom)}


class Loops:
    """Where the segments of a set being read belong: the party an N1 opened, or the line item
    its line segment (PO1, IT1, POC) opened.

    A party's detail (N2..PER) counts only until the first line item; a segment of a line (PID,
    DTM, ACK) only after one. `doc` is the document being read, its items under "lines".
    """

    def __init__(self, reader: SetReader, doc: dict[str, Any], parties: Mapping[str, str]):
        self.reader = reader
        self.doc = doc
        self.parties = parties  # N101 entity code -> the document's field
        self.party: tuple[dict[str, Any], str] | None = None
        self.line: tuple[dict[str, Any], str] | None = None
        self.prices: list[dict[str, Any]] = []  # the unit prices read, to take the CUR's currency

    def segments(self) -> Iterator[Segment]:
        """The set's segments in order, less the N1 loops' ones, which this reads itself."""
        for segment in self.reader.segments:
            if not self.party_segment(segment):
                yield segment

    def party_segment(self, segment: Segment) -> bool:
        """Read `segment` if it is an N1 of a known party or its detail; else return False."""
        if segment.tag == "N1" and segment.element(1) in self.parties:
            self.reader.loop, self.line = "N1", None
            field = self.parties[segment.element(1)]
            path = "$." + field
            self.doc[field] = read_party(self.reader, segment, path)
            self.party = (self.doc[field], path)
            return True
        if segment.tag in PARTY_DETAIL and self.party is not None and self.line is None:
            read_party_detail(self.reader, segment, *self.party)
            return True
        return False

    def new_line(self, loop: str) -> tuple[dict[str, Any], str]:
        """Open the next line item at its `loop` segment: the item to fill and its path."""
        self.reader.loop, self.party = loop, None
        path = f"$.lines[{len(self.doc['lines'])}]"
        item: dict[str, Any] = {}
        self.doc["lines"].append(item)
        self.line = (item, path)
        return item, path

    def unit_price(self, segment: Segment, n: int) -> None:
        """An optional unit price at element `n` for the current line; its currency comes later."""
        item, path = self._current()
        amount = self.reader.decimal(segment, n, f"{path}.unit_price.amount")
        if amount is not None:
            item["unit_price"] = {"amount": amount}
            self.prices.append(item["unit_price"])

    def line_text(self, segment: Segment, n: int, field: str) -> None:
        """Element `n` as the current line's `field`, when it is there (PID, NTE)."""
        item, path = self._current()
        value = self.reader.text(segment, n, f"{path}.{field}")
        if value is not None:
            item[field] = value

    def requested_date(self, segment: Segment) -> None:
        """DTM*002: the date the buyer wants the current line delivered."""
        item, path = self._current()
        item["requested_date"] = self.reader.date(segment, 2, f"{path}.requested_date")

    def _current(self) -> tuple[dict[str, Any], str]:
        assert self.line is not None, "a line segment before any line item"
        return self.line


def _put(target: dict[str, Any], key: str, value: object) -> None:
    if value is not None:
        target[key] = value
