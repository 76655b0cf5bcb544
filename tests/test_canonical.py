"""The canonical model: documents round-trip, and a bad body is rejected naming every bad field."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from canonical import (
    DOCUMENT_TYPES,
    FieldError,
    InvalidDocument,
    Money,
    OutboxRecord,
    PurchaseOrder,
    decode_document,
    decode_envelope,
    encode_document,
    encode_envelope,
    new_envelope,
    routing_key,
    sample_body,
    sample_document,
)

Body = dict[str, Any]


def sample_json(document_type: str, n: int = 0) -> Body:
    body: Body = json.loads(sample_body(document_type, n))
    return body


def rejection(document_type: str, body: Body | bytes, **kw: Any) -> InvalidDocument:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(InvalidDocument) as caught:
        decode_document(document_type, raw, **kw)
    return caught.value


@pytest.mark.parametrize("document_type", sorted(DOCUMENT_TYPES))
def test_every_document_type_round_trips_through_json(document_type: str) -> None:
    document = sample_document(document_type, 7)

    assert decode_document(document_type, encode_document(document)) == document


@pytest.mark.parametrize("document_type", sorted(DOCUMENT_TYPES))
def test_body_without_document_type_decodes_as_the_named_type(document_type: str) -> None:
    body = sample_json(document_type, 3)
    del body["document_type"]

    decoded = decode_document(document_type, json.dumps(body).encode())

    assert decoded == sample_document(document_type, 3)


def test_body_of_another_document_type_is_rejected_at_its_tag() -> None:
    error = rejection("invoice", sample_json("purchase_order"))

    assert error.errors == (FieldError("$.document_type", "Invalid value 'purchase_order'"),)


def test_unknown_document_type_is_an_invalid_document() -> None:
    error = rejection("purchase_order_v9", sample_json("purchase_order"))

    assert [e.path for e in error.errors] == ["$.document_type"]
    assert error.status == 422


DROP = object()  # as a value in the table below: delete the key instead


def mutate(body: Body, path: str, value: object) -> None:
    """Set (or with DROP, delete) the value at a dotted path; list indexes are numbers."""
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node: Any = body
    for key in parents:
        node = node[key]
    if value is DROP:
        del node[last]
    else:
        node[last] = value


@pytest.mark.parametrize(
    ("document_type", "field", "value", "path", "message"),
    [
        ("purchase_order", "lines.0.sku", 5, "$.lines[0].sku", "Expected `str`, got `int`"),
        ("purchase_order", "lines.1.unit_price", DROP, "$.lines[1].unit_price", "missing"),
        ("purchase_order", "lines.0.colour", "red", "$.lines[0].colour", "unknown field"),
        ("purchase_order", "lines.2.quantity.value", "-1", "$.lines[2].quantity.value", ">= 0"),
        ("purchase_order", "currency", "usd", "$.currency", "regex"),
        ("purchase_order", "lines.0.quantity.uom", "each", "$.lines[0].quantity.uom", "regex"),
        ("purchase_order", "lines.2.line_number", 1, "$.lines[2].line_number", "duplicate"),
        (
            "purchase_order",
            "lines.1.unit_price.amount",
            "NaN",
            "$.lines[1].unit_price.amount",
            "finite",
        ),
        (
            "purchase_order",
            "lines.1.unit_price.amount",
            "1e400",
            "$.lines[1].unit_price.amount",
            "digits",
        ),
        (
            "purchase_order",
            "lines.1.unit_price.currency",
            "EUR",
            "$.lines[1].unit_price.currency",
            "USD",
        ),
        ("purchase_order", "lines.0.gtin", "00614141000013", "$.lines[0].gtin", "check digit"),
        ("purchase_order", "lines", [], "$.lines", "length >= 1"),
        ("purchase_order", "order_date", "2026-02-30", "$.order_date", "Invalid RFC3339"),
        ("goods_receipt", "received_at", "2026-03-09T14:00:00", "$.received_at", "timezone"),
        ("goods_receipt", "lines.1.short_quantity", "0", "$.lines[1].short_quantity", "short"),
        (
            "purchase_order_ack",
            "lines.0.promised_date",
            DROP,
            "$.lines[0].promised_date",
            "required",
        ),
        (
            "advance_ship_notice",
            "orders.0.packs.1.sscc",
            "006141410000000013",
            "$.orders[0].packs[1].sscc",
            "check digit",
        ),
        ("inventory_position", "available", "90", "$.available", "on_hand - allocated"),
        ("inventory_delta", "sequence", 0, "$.sequence", ">= 1"),
        ("invoice", "total.amount", "1.00", "$.total.amount", "subtotal + tax + charges"),
        ("invoice", "lines.1.amount.amount", "1.00", "$.lines[1].amount.amount", "quantity x unit"),
        ("shipment_milestone", "milestone", "teleported", "$.milestone", "Invalid enum value"),
        ("exception", "severity", "meh", "$.severity", "Invalid enum value"),
    ],
)
def test_invalid_field_is_reported_at_its_json_path(
    document_type: str, field: str, value: object, path: str, message: str
) -> None:
    body = sample_json(document_type)
    mutate(body, field, value)

    error = rejection(document_type, body)

    assert [e.path for e in error.errors] == [path]
    assert message in error.errors[0].message


@pytest.mark.parametrize(
    "value", ["PO\x001", "PO-1\x00", "\x00PO-1", "PO\x1b[31m1", "PO\t1", "PO\x7f1", "PO\x851"]
)
@pytest.mark.parametrize(
    ("document_type", "field", "path"),
    [
        ("purchase_order", "po_number", "$.po_number"),
        ("purchase_order", "supplier.party_id", "$.supplier.party_id"),
        ("advance_ship_notice", "orders.0.po_number", "$.orders[0].po_number"),
        ("invoice", "invoice_number", "$.invoice_number"),
    ],
)
def test_control_character_in_an_identifier_is_refused_at_its_field(
    document_type: str, field: str, path: str, value: str
) -> None:
    body = sample_json(document_type)
    mutate(body, field, value)

    error = rejection(document_type, body)

    assert [e.path for e in error.errors] == [path]


@pytest.mark.parametrize(
    ("document_type", "field", "path"),
    [
        ("purchase_order", "po_number", "$.po_number"),
        ("purchase_order", "currency", "$.currency"),
        ("purchase_order", "lines.0.sku", "$.lines[0].sku"),
        ("purchase_order", "lines.0.quantity.uom", "$.lines[0].quantity.uom"),
        ("purchase_order", "buyer.gln", "$.buyer.gln"),
        ("exception", "reference.document_type", "$.reference.document_type"),
    ],
)
def test_trailing_newline_does_not_pass_an_anchored_pattern(
    document_type: str, field: str, path: str
) -> None:
    # msgspec matches with re.search, where `$` also matches before a final newline.
    body = sample_json(document_type)
    *parents, last = field.split(".")
    node: Any = body
    for key in parents:
        node = node[int(key) if key.isdigit() else key]
    mutate(body, field, node[last] + "\n")

    error = rejection(document_type, body)

    assert [e.path for e in error.errors] == [path]


def test_identifier_may_hold_inner_spaces_and_non_ascii_letters() -> None:
    body = sample_json("purchase_order")
    body["po_number"] = "Bestellung Nr. 7 für Köln"

    order = decode_document("purchase_order", json.dumps(body).encode())

    assert isinstance(order, PurchaseOrder)
    assert order.po_number == "Bestellung Nr. 7 für Köln"


PO_BODY = sample_body("purchase_order", 1)


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (
            PO_BODY.replace(b'{"document_type"', b'{"po_number":"PO-9","document_type"'),
            "$.po_number",
        ),
        (PO_BODY.replace(b'"sku":', b'"sku":"A-1","sku":', 1), "$.lines[0].sku"),
        (
            PO_BODY.replace(b'"currency":"USD"', b'"currency" : "USD" ,\n "currency":"USD"', 1),
            "$.currency",
        ),
        # The escaped colon in the kept value makes up for the dropped key's colon in a count.
        (
            PO_BODY.replace(b'{"document_type"', b'{"po_number":"PO:9","document_type"').replace(
                b'"po_number":"PO-0000001"', b'"po_number":"PO\\u003a1"'
            ),
            "$.po_number",
        ),
    ],
)
def test_key_repeated_within_an_object_is_refused_at_its_path(body: bytes, path: str) -> None:
    error = rejection("purchase_order", body)

    assert [(e.path, e.message) for e in error.errors] == [
        (path, f"key `{path.rpartition('.')[2]}` appears more than once")
    ]


def test_repeated_key_is_listed_beside_the_other_bad_fields() -> None:
    body = PO_BODY.replace(b'"sku":', b'"sku":"A-1","sku":', 1).replace(b'"USD"', b'"usd"', 1)

    error = rejection("purchase_order", body)

    assert {e.path for e in error.errors} == {"$.currency", "$.lines[0].sku"}


def test_every_bad_field_is_listed_at_once() -> None:
    body = sample_json("purchase_order")
    body["currency"] = "usd"
    body["lines"][0]["sku"] = 5
    del body["lines"][1]["unit_price"]
    body["lines"][2]["quantity"]["value"] = "-1"
    body["colour"] = "red"

    error = rejection("purchase_order", body)

    assert {e.path for e in error.errors} == {
        "$.currency",
        "$.lines[0].sku",
        "$.lines[1].unit_price",
        "$.lines[2].quantity.value",
        "$.colour",
    }
    assert error.detail == "purchase_order: 5 invalid fields"


def test_listed_errors_are_capped_by_max_errors() -> None:
    body = sample_json("purchase_order")
    for line in body["lines"]:
        line["sku"] = 0
        line["quantity"]["uom"] = "each"

    error = rejection("purchase_order", body, max_errors=4)

    assert len(error.errors) == 4
    assert error.detail == "purchase_order: 4 or more invalid fields"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "malformed"),
        (b"", "truncated"),
        (b'{"po_number": "PO-1", "lines": [', "truncated"),
        (b"[1, 2]", "Expected `object`, got `array`"),
    ],
)
def test_body_that_is_not_a_json_object_is_one_error_at_the_root(body: bytes, message: str) -> None:
    error = rejection("purchase_order", body)

    assert [e.path for e in error.errors] == ["$"]
    assert message in error.errors[0].message


def test_json_number_is_read_as_an_exact_decimal() -> None:
    body = sample_json("purchase_order")
    body["lines"][0]["unit_price"]["amount"] = 0.1
    raw = json.dumps(body).encode()

    order = decode_document("purchase_order", raw)

    assert isinstance(order, PurchaseOrder)
    assert order.lines[0].unit_price.amount == Decimal("0.1")


def test_money_is_encoded_as_a_decimal_string() -> None:
    order = sample_document("purchase_order")

    body = json.loads(encode_document(order))

    assert body["lines"][0]["unit_price"] == {"amount": "4.25", "currency": "USD"}


def test_money_built_from_a_float_is_refused() -> None:
    with pytest.raises(ValueError, match="must be a Decimal, not float"):
        Money(amount=4.25, currency="USD")  # type: ignore[arg-type]


def test_documents_are_immutable() -> None:
    order = sample_document("purchase_order")
    assert isinstance(order, PurchaseOrder)

    with pytest.raises(AttributeError):
        order.po_number = "PO-X"  # type: ignore[misc]


def test_new_envelope_takes_type_and_version_from_the_document() -> None:
    envelope = new_envelope(
        sample_document("invoice"), partner_id="acme", idempotency_key="acme:INV-1"
    )

    assert (envelope.document_type, envelope.schema_version) == ("invoice", 1)
    assert envelope.correlation_id == envelope.message_id
    assert envelope.occurred_at == envelope.received_at


def test_envelope_round_trips_through_json() -> None:
    envelope = new_envelope(
        sample_document("advance_ship_notice", 2),
        partner_id="acme",
        idempotency_key="acme:ASN-2",
        correlation_id="thread-1",
        causation_id="msg-0",
    )

    assert decode_envelope(encode_envelope(envelope)) == envelope


def test_envelope_whose_header_disagrees_with_its_document_is_rejected() -> None:
    envelope = new_envelope(sample_document("invoice"), partner_id="acme", idempotency_key="k")
    body = json.loads(encode_envelope(envelope))
    body["document_type"] = "purchase_order"

    with pytest.raises(InvalidDocument) as caught:
        decode_envelope(json.dumps(body).encode())

    assert [e.path for e in caught.value.errors] == ["$.document_type"]


def test_envelope_errors_name_paths_inside_the_document() -> None:
    envelope = new_envelope(
        sample_document("purchase_order"), partner_id="acme", idempotency_key="k"
    )
    body = json.loads(encode_envelope(envelope))
    body["partner_id"] = "acme.eu"
    body["document"]["lines"][1]["quantity"]["value"] = "-2"

    with pytest.raises(InvalidDocument) as caught:
        decode_envelope(json.dumps(body).encode())

    assert [e.path for e in caught.value.errors] == [
        "$.partner_id",
        "$.document.lines[1].quantity.value",
    ]


def test_envelope_with_unknown_document_tag_is_rejected_at_the_tag() -> None:
    envelope = new_envelope(
        sample_document("purchase_order"), partner_id="acme", idempotency_key="k"
    )
    body = json.loads(encode_envelope(envelope))
    body["document"]["document_type"] = "quote"

    with pytest.raises(InvalidDocument) as caught:
        decode_envelope(json.dumps(body).encode())

    assert caught.value.errors == (FieldError("$.document.document_type", "Invalid value 'quote'"),)


@pytest.mark.parametrize("document_type", sorted(DOCUMENT_TYPES))
def test_samples_are_deterministic_and_vary_with_n(document_type: str) -> None:
    assert sample_body(document_type, 4) == sample_body(document_type, 4)
    assert sample_body(document_type, 4) != sample_body(document_type, 5)


def test_sample_comes_from_the_named_supplier() -> None:
    order = sample_document("purchase_order", supplier="globex")

    assert isinstance(order, PurchaseOrder)
    assert order.supplier.party_id == "globex"


def test_outbox_record_carries_the_envelope_body_through_msgpack() -> None:
    envelope = new_envelope(
        sample_document("purchase_order"), partner_id="acme", idempotency_key="k"
    )
    record = OutboxRecord(
        seq=1,
        message_id=envelope.message_id,
        partner_id="acme",
        document_type="purchase_order",
        schema_version=1,
        routing_key=routing_key("purchase_order", "acme"),
        correlation_id=envelope.correlation_id,
        causation_id=None,
        idempotency_key="k",
        body=encode_envelope(envelope),
        created_at=1_767_225_600.0,
    )

    copy = msgspec.msgpack.decode(msgspec.msgpack.encode(record), type=OutboxRecord)

    assert copy == record
    assert copy.routing_key == "purchase_order.acme"
    assert decode_envelope(copy.body) == envelope
