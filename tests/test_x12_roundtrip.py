"""Every mapping round-trips: a canonical document written as X12 reads back equal.

Derandomized and bounded, so the suite is repeatable. The documents are generated within what
X12 carries: values free of the interchange's delimiters and control characters, in Latin-1;
times in whole seconds; invoice charges in whole cents (SAC05 has two implied decimals).
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from canonical import (
    Address,
    AdvanceShipNotice,
    InventoryPosition,
    Invoice,
    InvoiceLine,
    Money,
    Pack,
    PackedItem,
    PartyRef,
    PurchaseOrder,
    PurchaseOrderAck,
    PurchaseOrderAckLine,
    PurchaseOrderChange,
    PurchaseOrderChangeLine,
    PurchaseOrderLine,
    Quantity,
    ShippedOrder,
    sample_document,
)
from canonical.common import gs1_check_digit
from canonical.documents import Document
from canonical.x12 import (
    BY_DOCUMENT_TYPE,
    ControlNumbers,
    X12Profile,
    decode_file,
    encode_interchange,
)

SUITE = settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
AT = dt.datetime(2026, 3, 9, 8, 15, tzinfo=dt.UTC)
NUMBERS = ControlNumbers(interchange=42, group=7)

# Printable Latin-1 without X12's usual delimiters (* ~ : ^).
SAFE = st.characters(
    min_codepoint=0x20,
    max_codepoint=0xFF,
    blacklist_categories=("Cc",),
    blacklist_characters="*~:^\x7f\x85\xa0",
)
CODE_CHARS = st.sampled_from("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijk0123456789-./#")


def code(max_size: int) -> st.SearchStrategy[str]:
    return st.text(CODE_CHARS, min_size=1, max_size=max_size)


def text(max_size: int) -> st.SearchStrategy[str]:
    return st.text(SAFE, min_size=1, max_size=max_size)


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


def gs1(length: int) -> st.SearchStrategy[str]:
    body = st.text(st.sampled_from("0123456789"), min_size=length - 1, max_size=length - 1)
    return body.map(lambda digits: digits + gs1_check_digit(digits))


skus = st.from_regex(r"\A[A-Z0-9][A-Za-z0-9._/-]{0,20}\Z")
uoms = st.sampled_from(["EA", "CS", "KG", "PK", "LB", "BX"])
currencies = st.sampled_from(["USD", "EUR", "CAD"])
dates = st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2099, 12, 31))
gtins = st.sampled_from([8, 12, 13, 14]).flatmap(gs1)


def amounts(places: int = 4, top: int = 100_000) -> st.SearchStrategy[Decimal]:
    return st.decimals(min_value=0, max_value=top, places=places, allow_nan=False)


quantities = st.builds(Quantity, value=amounts(3), uom=uoms)
addresses = st.builds(
    Address,
    line1=text(55),
    line2=optional(text(55)),
    city=text(30),
    region=optional(st.sampled_from(["PA", "NY", "ON"])),
    postal_code=code(15),
    country=st.sampled_from(["US", "CA", "DE"]),
)
parties = st.builds(
    PartyRef,
    party_id=code(35),
    name=optional(text(60)),
    gln=optional(gs1(13)),
    address=optional(addresses),
)


def unique_lines(build: Any, size: int = 5) -> st.SearchStrategy[tuple[Any, ...]]:
    numbers = st.lists(st.integers(1, 999_999), min_size=1, max_size=size, unique=True)
    return numbers.flatmap(lambda ns: st.tuples(*(build(n) for n in ns)))


@st.composite
def purchase_orders(draw: st.DrawFn) -> PurchaseOrder:
    currency = draw(currencies)
    lines = draw(
        unique_lines(
            lambda n: st.builds(
                PurchaseOrderLine,
                line_number=st.just(n),
                sku=skus,
                gtin=optional(gtins),
                description=optional(text(80)),
                quantity=quantities,
                unit_price=st.builds(Money, amount=amounts(4), currency=st.just(currency)),
                requested_date=dates,
            )
        )
    )
    return PurchaseOrder(
        po_number=draw(code(22)),
        buyer=draw(parties),
        supplier=draw(parties),
        ship_to=draw(optional(parties)),
        order_date=draw(dates),
        currency=currency,
        lines=lines,
    )


@st.composite
def change_lines(draw: st.DrawFn, n: int, currency: str) -> PurchaseOrderChangeLine:
    kind = draw(st.sampled_from(["add", "change", "cancel"]))
    prices = st.builds(Money, amount=amounts(4), currency=st.just(currency))
    quantity, price, day = draw(optional(quantities)), draw(optional(prices)), draw(optional(dates))
    if kind == "add":
        quantity, price, day = draw(quantities), draw(prices), draw(dates)
    elif kind == "change" and quantity is None and price is None and day is None:
        quantity = draw(quantities)
    return PurchaseOrderChangeLine(
        line_number=n,
        change=kind,
        sku=draw(skus),
        quantity=quantity,
        unit_price=price,
        requested_date=day,
    )


@st.composite
def purchase_order_changes(draw: st.DrawFn) -> PurchaseOrderChange:
    currency = draw(currencies)
    return PurchaseOrderChange(
        po_number=draw(code(22)),
        change_number=draw(st.integers(1, 10**9)),
        change_date=draw(dates),
        buyer=draw(parties),
        supplier=draw(parties),
        currency=currency,
        reason=draw(optional(text(80))),
        lines=draw(unique_lines(lambda n: change_lines(n, currency))),
    )


@st.composite
def ack_lines(draw: st.DrawFn, n: int, currency: str) -> PurchaseOrderAckLine:
    status = draw(st.sampled_from(["accept", "change", "reject"]))
    if status == "reject":
        promised = draw(optional(st.builds(Quantity, value=st.just(Decimal(0)), uom=uoms)))
        day = draw(optional(dates))
    else:
        promised, day = draw(quantities), draw(dates)
    return PurchaseOrderAckLine(
        line_number=n,
        sku=draw(skus),
        status=status,
        promised_quantity=promised,
        promised_date=day,
        reason=draw(optional(text(80))),
        unit_price=draw(optional(st.builds(Money, amount=amounts(4), currency=st.just(currency)))),
    )


@st.composite
def purchase_order_acks(draw: st.DrawFn) -> PurchaseOrderAck:
    currency = draw(currencies)
    return PurchaseOrderAck(
        po_number=draw(code(22)),
        ack_number=draw(optional(code(22))),
        ack_date=draw(dates),
        supplier=draw(parties),
        buyer=draw(parties),
        lines=draw(unique_lines(lambda n: ack_lines(n, currency))),
    )


@st.composite
def advance_ship_notices(draw: st.DrawFn) -> AdvanceShipNotice:
    po_numbers = draw(st.lists(code(22), min_size=1, max_size=3, unique=True))
    ssccs = iter(draw(st.lists(gs1(18), min_size=9, max_size=9, unique=True)))
    items = st.builds(
        PackedItem,
        po_line_number=st.integers(1, 999_999),
        sku=skus,
        gtin=optional(gtins),
        quantity=quantities,
        lot_number=optional(code(30)),
        expiry_date=optional(dates),
    )
    orders = tuple(
        ShippedOrder(
            po_number=po,
            packs=tuple(
                Pack(
                    sscc=next(ssccs),
                    kind=draw(st.sampled_from(["pallet", "carton"])),
                    items=tuple(draw(st.lists(items, min_size=1, max_size=3))),
                )
                for _ in range(draw(st.integers(1, 3)))
            ),
        )
        for po in po_numbers
    )
    return AdvanceShipNotice(
        asn_number=draw(code(22)),
        ship_date=draw(dates),
        expected_delivery_date=draw(optional(dates)),
        supplier=draw(parties),
        ship_to=draw(parties),
        carrier_scac=draw(optional(st.from_regex(r"\A[A-Z]{2,4}\Z"))),
        bill_of_lading=draw(optional(code(35))),
        orders=orders,
    )


@st.composite
def invoice_lines(draw: st.DrawFn, n: int, currency: str) -> InvoiceLine:
    quantity = draw(quantities)
    price = draw(amounts(4, top=10_000))
    places = draw(st.integers(0, 4))
    amount = (quantity.value * price).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
    return InvoiceLine(
        line_number=n,
        po_line_number=draw(optional(st.integers(1, 999_999))),
        sku=draw(skus),
        gtin=draw(optional(gtins)),
        description=draw(optional(text(80))),
        quantity=quantity,
        unit_price=Money(amount=price, currency=currency),
        amount=Money(amount=amount, currency=currency),
    )


@st.composite
def invoices(draw: st.DrawFn) -> Invoice:
    currency = draw(currencies)
    lines = draw(unique_lines(lambda n: invoice_lines(n, currency)))
    subtotal = sum((line.amount.amount for line in lines), Decimal(0))
    tax = draw(optional(amounts(3, top=10_000)))
    charges = draw(optional(amounts(2, top=10_000)))
    total = subtotal + (tax or 0) + (charges or 0)

    def money(amount: Decimal | None) -> Money | None:
        return None if amount is None else Money(amount=amount, currency=currency)

    return Invoice(
        invoice_number=draw(code(22)),
        invoice_date=draw(dates),
        due_date=draw(optional(dates)),
        po_number=draw(code(22)),
        supplier=draw(parties),
        bill_to=draw(parties),
        currency=currency,
        lines=lines,
        subtotal=Money(amount=subtotal, currency=currency),
        tax=money(tax),
        charges=money(charges),
        total=Money(amount=total, currency=currency),
    )


@st.composite
def inventory_positions(draw: st.DrawFn) -> InventoryPosition:
    on_hand, allocated, quarantined = (draw(amounts(2)) for _ in range(3))
    moment = draw(
        st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2099, 1, 1))
    )
    offset = dt.timezone(dt.timedelta(hours=draw(st.integers(-12, 14))))
    return InventoryPosition(
        sku=draw(skus),
        location_id=draw(code(20)),
        uom=draw(uoms),
        as_of=moment.replace(microsecond=0, tzinfo=offset),
        on_hand=on_hand,
        allocated=allocated,
        in_transit=draw(amounts(2)),
        quarantined=quarantined,
        available=on_hand - allocated - quarantined,
    )


STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "purchase_order": purchase_orders(),
    "purchase_order_change": purchase_order_changes(),
    "purchase_order_ack": purchase_order_acks(),
    "advance_ship_notice": advance_ship_notices(),
    "invoice": invoices(),
    "inventory_position": inventory_positions(),
}


def round_trip(documents: list[Document], profile: X12Profile) -> list[Document]:
    sent = encode_interchange(documents, profile, NUMBERS, at=AT)
    reading = decode_file(sent.data, file_name="out.x12", sha256="0" * 64, profile=profile)
    assert reading.problems == ()
    return [found.document for found in reading.decoding.documents]


def test_every_mapped_set_has_a_strategy() -> None:
    assert set(STRATEGIES) == set(BY_DOCUMENT_TYPE)


@pytest.mark.parametrize("document_type", sorted(STRATEGIES))
def test_a_generated_document_reads_back_equal(document_type: str) -> None:
    @SUITE
    @given(STRATEGIES[document_type])
    def check(document: Document) -> None:
        assert round_trip([document], X12Profile()) == [document]

    check()


PROFILES = {
    "default": X12Profile(),
    "pipes, 005010, no line breaks, mapped codes": X12Profile(
        element_separator="|",
        component_separator=">",
        repetition_separator="!",
        segment_terminator="\n",
        line_break=False,
        version="005010",
        uom_map={"CA": "CS", "PC": "EA"},
        party_map={"0099887766": "distco"},
    ),
}


@pytest.mark.parametrize("profile", PROFILES.values(), ids=list(PROFILES))
def test_every_sample_document_reads_back_equal_in_one_interchange(profile: X12Profile) -> None:
    documents = [sample_document(t, 3) for t in sorted(BY_DOCUMENT_TYPE)]
    assert round_trip(documents, profile) == documents


def test_the_profile_maps_units_and_parties_on_the_wire() -> None:
    profile = PROFILES["pipes, 005010, no line breaks, mapped codes"]
    order = sample_document("purchase_order", 1)
    text = encode_interchange([order], profile, NUMBERS, at=AT).data.decode("latin-1")
    assert "N1|BY|DistCo Wholesale|92|0099887766\n" in text
    assert "|PC|" in text
    assert "|EA|" not in text
    assert round_trip([order], profile) == [order]
