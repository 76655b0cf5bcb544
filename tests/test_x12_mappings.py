"""The mappings read X12 as partners write it, beyond what the gateway itself writes.

An 856 whose HL levels are not listed depth first (the tree is built from parent pointers);
an 846 with several items (one document each); 855 line codes beyond the three the gateway
writes; a partner's TA1-only interchange; codes translated by the partner's profile.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from x12_text import group, interchange

from canonical import AdvanceShipNotice, InventoryPosition, PurchaseOrderAck
from canonical.common import gs1_check_digit
from canonical.x12 import X12Profile, X12Reading, decode_file


def one_set(set_id: str, body: list[str], functional_id: str) -> str:
    segments = [f"ST*{set_id}*0001", *body, f"SE*{len(body) + 2}*0001"]
    return interchange([group([segments], functional_id=functional_id)])


def read(text: str, profile: X12Profile | None = None) -> X12Reading:
    return decode_file(text.encode("latin-1"), file_name="in.x12", sha256="0" * 64, profile=profile)


def sscc(n: int) -> str:
    digits = f"00614141{n:09d}"
    return digits + gs1_check_digit(digits)


ASN_HEAD = [
    "BSN*00*ASN-9*20260308*1200",
    "HL*1**S*1",
    "TD5**2*ODFL",
    "N1*ST*DC East*92*DC-EAST",
    "N1*SF*Acme*92*acme",
]


def test_an_856_tree_is_built_from_parent_pointers_not_from_the_order_of_the_hls() -> None:
    body = [
        *ASN_HEAD,
        "HL*2*1*O*1",
        "PRF*PO-1",
        "HL*3*2*P*1",
        f"MAN*GM*{sscc(1)}",
        "HL*4*2*P*1",
        f"MAN*GM*{sscc(2)}",
        "HL*5*1*O*1",  # a second order, declared before the items of the first
        "PRF*PO-2",
        "HL*6*5*T*1",
        f"MAN*GM*{sscc(3)}",
        "HL*7*4*I*0",  # item of pack 4 (order PO-1), listed after order PO-2
        "LIN*2*BP*SKU-2",
        "SN1**5*EA",
        "HL*8*3*I*0",
        "LIN*1*BP*SKU-1",
        "SN1**7*EA",
        "HL*9*6*I*0",
        "LIN*1*BP*SKU-9",
        "SN1**1*CA",
    ]
    reading = read(one_set("856", body, "SH"), X12Profile(uom_map={"CA": "CS"}))
    assert reading.problems == ()
    (found,) = reading.decoding.documents
    asn = found.document
    assert isinstance(asn, AdvanceShipNotice)
    tree = [
        (o.po_number, [(p.kind, [(i.sku, i.quantity.value, i.quantity.uom) for i in p.items])
                       for p in o.packs])
        for o in asn.orders
    ]  # fmt: skip
    assert tree == [
        ("PO-1", [("carton", [("SKU-1", 7, "EA")]), ("carton", [("SKU-2", 5, "EA")])]),
        ("PO-2", [("pallet", [("SKU-9", 1, "CS")])]),
    ]


@pytest.mark.parametrize(
    ("hl", "element", "why"),
    [
        ("HL*3*9*P*1", 2, "parent 9 not seen"),
        ("HL*3*1*P*1", 2, "a pack under the shipment"),
        ("HL*3*2*X*1", 3, "an unknown level"),
        ("HL*2*1*P*1", 1, "an id used twice"),
    ],
    ids=lambda v: v if isinstance(v, str) and " " in v else None,
)
def test_an_856_hl_that_breaks_the_tree_is_rejected_at_its_element(
    hl: str, element: int, why: str
) -> None:
    body = [*ASN_HEAD, "HL*2*1*O*1", "PRF*PO-1", hl, f"MAN*GM*{sscc(1)}"]
    reading = read(one_set("856", body, "SH"))
    (problem,) = reading.problems
    assert (problem.segment, problem.element) == (3 + body.index(hl) + 1, element), why
    assert reading.decoding.documents == ()


def test_an_846_with_several_items_gives_one_position_each() -> None:
    body = [
        "BIA*00*DD*REP-1*20260302*061500",
        "N1*WH*East*92*DC-EAST",
        "LIN**BP*SKU-1",
        "QTY*17*120*EA",
        "QTY*02*30*EA",
        "LIN**VP*SKU-2",
        "QTY*17*8*EA",
        "CTT*2",
    ]
    reading = read(one_set("846", body, "IB"))
    positions = [d.document for d in reading.decoding.documents]
    assert all(isinstance(p, InventoryPosition) for p in positions)
    assert [(p.sku, p.on_hand, p.allocated, p.available) for p in positions] == [  # type: ignore[union-attr]
        ("SKU-1", 120, 30, 90),
        ("SKU-2", 8, 0, 8),
    ]
    assert {d.provenance.transaction_set for d in reading.decoding.documents} == {"0001"}


@pytest.mark.parametrize(
    ("code", "status"),
    [("IA", "accept"), ("IB", "change"), ("IQ", "change"), ("IP", "change"), ("IR", "reject")],
)
def test_855_line_codes_become_the_three_canonical_statuses(code: str, status: str) -> None:
    promised = "" if status == "reject" else "*12*EA*068*20260310"
    body = [
        "BAK*00*AC*PO-1*20260303",
        "N1*SU**92*acme",
        "N1*BY**92*distco",
        "PO1*1*****BP*SKU-1",
        f"ACK*{code}{promised}",
    ]
    reading = read(one_set("855", body, "PR"))
    (found,) = reading.decoding.documents
    assert isinstance(found.document, PurchaseOrderAck)
    assert found.document.lines[0].status == status


def test_the_profile_maps_a_partners_party_ids_to_ours() -> None:
    body = [
        "BAK*00*AC*PO-1*20260303",
        "N1*SU*Acme*ZZ*ACME-001",
        "N1*BY**92*4455",
        "PO1*1*****BP*SKU-1",
        "ACK*IA*1*EA*068*20260310",
    ]
    profile = X12Profile(party_map={"ACME-001": "acme", "4455": "distco"})
    (found,) = read(one_set("855", body, "PR"), profile).decoding.documents
    assert isinstance(found.document, PurchaseOrderAck)
    assert (found.document.supplier.party_id, found.document.buyer.party_id) == ("acme", "distco")
    assert found.document.lines[0].promised_quantity.value == Decimal(1)  # type: ignore[union-attr]


def test_a_ta1_only_interchange_from_a_partner_is_read_and_owes_nothing() -> None:
    text = interchange([]).replace("IEA*0", "TA1*000000101*260309*0815*A*000~\nIEA*0")
    reading = read(text)
    assert reading.accepted
    assert reading.acknowledgements == ()
