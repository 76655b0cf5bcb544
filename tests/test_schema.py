"""The published JSON Schemas: one per document and the envelope, agreeing with the decoder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from canonical import (
    DOCUMENT_TYPES,
    document_schemas,
    encode_envelope,
    new_envelope,
    sample_body,
    sample_document,
    write_schemas,
)

Schema = dict[str, Any]


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Schema]:
    """The schemas as `write_schemas` leaves them on disk, keyed by file name."""
    paths = write_schemas(tmp_path_factory.mktemp("schemas") / "out")
    return {path.name: json.loads(path.read_text(encoding="utf-8")) for path in paths}


def validator(schema: Schema) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def nodes(schema: Any) -> Iterator[dict[str, Any]]:
    """Yield every object node of a schema, depth first."""
    if isinstance(schema, dict):
        yield schema
        for value in schema.values():
            yield from nodes(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from nodes(value)


def _types(node: dict[str, Any]) -> list[str]:
    declared = node.get("type", [])
    return [declared] if isinstance(declared, str) else list(declared)


def test_one_schema_file_per_document_type_and_the_envelope(written: dict[str, Schema]) -> None:
    expected = {f"{name}.schema.json" for name in DOCUMENT_TYPES} | {"envelope.schema.json"}

    assert set(written) == expected


def test_write_schemas_returns_the_paths_it_wrote(tmp_path: Path) -> None:
    paths = write_schemas(tmp_path)

    assert sorted(paths) == sorted(tmp_path.iterdir())


@pytest.mark.parametrize("name", sorted([*DOCUMENT_TYPES, "envelope"]))
def test_every_schema_is_valid_draft_2020_12(written: dict[str, Schema], name: str) -> None:
    schema = written[f"{name}.schema.json"]

    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("document_type", sorted(DOCUMENT_TYPES))
def test_every_sample_validates_against_its_schema(
    written: dict[str, Schema], document_type: str
) -> None:
    schema = written[f"{document_type}.schema.json"]

    validator(schema).validate(json.loads(sample_body(document_type, 5)))


@pytest.mark.parametrize("document_type", sorted(DOCUMENT_TYPES))
def test_schema_accepts_a_body_without_document_type(
    written: dict[str, Schema], document_type: str
) -> None:
    body = json.loads(sample_body(document_type))
    del body["document_type"]

    validator(written[f"{document_type}.schema.json"]).validate(body)


def test_envelope_sample_validates_against_the_envelope_schema(
    written: dict[str, Schema],
) -> None:
    envelope = new_envelope(sample_document("invoice"), partner_id="acme", idempotency_key="k")

    validator(written["envelope.schema.json"]).validate(json.loads(encode_envelope(envelope)))


def test_envelope_schema_requires_the_document_tag(written: dict[str, Schema]) -> None:
    envelope = new_envelope(sample_document("invoice"), partner_id="acme", idempotency_key="k")
    body = json.loads(encode_envelope(envelope))
    del body["document"]["document_type"]

    with pytest.raises(jsonschema.ValidationError):
        validator(written["envelope.schema.json"]).validate(body)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("currency",), "usd"),
        (("lines", 0, "quantity", "uom"), "each"),
        (("lines", 0, "colour"), "red"),
        (("order_date",), "yesterday"),
    ],
)
def test_schema_rejects_an_invalid_purchase_order(
    written: dict[str, Schema], path: tuple[str | int, ...], value: object
) -> None:
    body = json.loads(sample_body("purchase_order"))
    node = body
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value

    with pytest.raises(jsonschema.ValidationError):
        validator(written["purchase_order.schema.json"]).validate(body)


def test_schema_rejects_a_purchase_order_missing_its_lines(written: dict[str, Schema]) -> None:
    body = json.loads(sample_body("purchase_order"))
    del body["lines"]

    with pytest.raises(jsonschema.ValidationError, match="'lines' is a required property"):
        validator(written["purchase_order.schema.json"]).validate(body)


def test_no_schema_has_a_float_anywhere() -> None:
    floats = [
        (name, node)
        for name, schema in document_schemas().items()
        for node in nodes(schema)
        if "number" in _types(node)
    ]

    assert floats == []


def test_money_and_quantity_are_decimal_strings_in_the_schema() -> None:
    defs = document_schemas()["envelope"]["$defs"]
    decimal = {"type": "string", "format": "decimal"}

    assert defs["Money"]["properties"]["amount"] == decimal
    assert defs["Quantity"]["properties"]["value"] == decimal
