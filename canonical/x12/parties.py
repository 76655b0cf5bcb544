"""The pieces every mapping shares: N1 party loops and the product id pairs of line items.

Party: `N1*{entity}*{name}*92*{party id}`, then `N3` (address lines), `N4` (city, region,
postal code, country) and `REF*UL*{GLN}`: the gateway's convention for a party's GLN beside the
id the buyer assigned. Party ids and units pass through the profile's maps both ways.
"""

from __future__ import annotations

from typing import Any

from canonical.common import PartyRef
from canonical.x12.elements import SetReader, SetWriter
from canonical.x12.syntax import Segment

__all__ = [
    "GTIN_QUALIFIERS",
    "gtin_qualifier",
    "product_ids",
    "read_party",
    "read_party_detail",
    "write_party",
]

# Product id qualifiers read as a GTIN: UPC (12), EAN (13), GTIN-14, and the generic "UK".
GTIN_QUALIFIERS = frozenset({"UP", "EN", "UK", "UA"})
PARTY_DETAIL = frozenset({"N2", "N3", "N4", "REF", "PER"})


def gtin_qualifier(gtin: str) -> str:
    return {12: "UP", 13: "EN"}.get(len(gtin), "UK")


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


def _put(target: dict[str, Any], key: str, value: object) -> None:
    if value is not None:
        target[key] = value
