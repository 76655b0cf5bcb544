"""The generated contracts: valid OpenAPI 3.1 and AsyncAPI 3.0, naming what the gateway does."""

from __future__ import annotations

import ast
import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
import orjson
import pytest
from openapi_spec_validator import validate as validate_openapi

from canonical.codec import encode_envelope
from canonical.documents import DOCUMENT_TYPES
from canonical.envelope import new_envelope
from canonical.errors import FieldError, GatewayError, InvalidDocument, RateLimited
from canonical.outbox import routing_key
from canonical.samples import sample_body, sample_document
from gateway.config.delivery import DEFAULT_AMQP_ROUTING_KEY
from gateway.contracts import LISTENERS, asyncapi_for, openapi_for
from protocols.http import ingress, pull
from protocols.http.problem import Problem, problem_response

ROOT = Path(__file__).resolve().parent.parent
# AsyncAPI 3.0.0's JSON Schema, vendored from the @asyncapi/specs package (Apache-2.0):
# no maintained Python validator for AsyncAPI 3 exists.
ASYNCAPI_SCHEMA = Path(__file__).parent / "asyncapi" / "asyncapi-3.0.0.schema.json"


def asyncapi_errors(document: dict[str, Any]) -> list[str]:
    schema = json.loads(ASYNCAPI_SCHEMA.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{list(e.path)}: {e.message[:200]}" for e in validator.iter_errors(document)]


@pytest.mark.parametrize("listener", sorted(LISTENERS))
def test_each_listeners_openapi_document_is_valid_openapi_3_1(listener: str) -> None:
    document = openapi_for(listener)
    assert document["openapi"] == "3.1.0"
    validate_openapi(document)


def test_partner_listener_documents_one_webhook_path_per_document_type_and_the_pull_api() -> None:
    paths = openapi_for("partner")["paths"]
    for document_type in DOCUMENT_TYPES:
        operation = paths[f"/webhooks/{{partner}}/{document_type}"]["post"]
        assert {"202", "400", "401", "403", "404", "413", "415", "422", "429", "503"} <= set(
            operation["responses"]
        )
        headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
        assert {"webhook-id", "webhook-timestamp", "webhook-signature"} <= headers
    assert "get" in paths["/partners/{partner}/messages"]
    assert "post" in paths["/partners/{partner}/messages/ack"]


def test_admin_listener_documents_the_operators_paths() -> None:
    # Every route against every operation: tests/test_http_router.py.
    paths = set(openapi_for("admin")["paths"])
    assert paths == {
        "/healthz",
        "/readyz",
        "/metrics",
        "/dead-letters",
        "/dead-letters/{id}",
        "/dead-letters/replay",
        "/endpoints/{partner}/enable",
        "/config/reload",
        "/threads/{correlation_id}",
        "/purchase-orders/{buyer}/{po_number}",
        "/openapi.json",
        "/asyncapi.json",
    }


def test_the_generator_takes_any_number_of_operation_tuples() -> None:
    from gateway.contracts.openapi import openapi_document

    document = openapi_document([ingress.OPERATIONS, pull.OPERATIONS], title="t", version="1")
    assert len(document["paths"]) == len(DOCUMENT_TYPES) + 2


@pytest.mark.parametrize(
    "error",
    [
        InvalidDocument("bad", errors=[FieldError("$.lines[0].qty", "Expected int")]),
        RateLimited("slow down", retry_after=1.5),
    ],
    ids=["with-field-errors", "plain"],
)
def test_problem_struct_describes_what_problem_response_sends(error: GatewayError) -> None:
    # The contracts' problem schema is msgspec's schema of `Problem`: a body that decodes
    # strictly as `Problem` matches it.
    _, _, body = problem_response(error, instance="/x")
    problem = msgspec.json.decode(body, type=Problem, strict=True)
    assert problem.status == error.status


def test_asyncapi_document_validates_against_the_asyncapi_3_0_schema() -> None:
    assert asyncapi_errors(asyncapi_for()) == []


def test_the_asyncapi_validation_catches_a_broken_document() -> None:
    broken = copy.deepcopy(asyncapi_for())
    broken["channels"]["events"]["address"] = 5
    del broken["info"]
    assert len(asyncapi_errors(broken)) >= 2


def test_asyncapi_carries_every_document_type_as_a_message() -> None:
    document = asyncapi_for()
    events = document["channels"]["events"]
    assert set(events["messages"]) == set(DOCUMENT_TYPES)
    assert events["parameters"]["document"]["enum"] == sorted(DOCUMENT_TYPES)


def address_matches(document: dict[str, Any], channel: str, key: str) -> bool:
    """Whether `key` is an address of the channel: its parameters' enums hold."""
    spec = document["channels"][channel]
    names = re.findall(r"{(\w+)}", spec["address"])
    pattern = re.escape(spec["address"])
    for name in names:
        pattern = pattern.replace(re.escape(f"{{{name}}}"), f"(?P<{name}>[^.]+)")
    found = re.fullmatch(pattern, key)
    if found is None:
        return False
    return all(found[name] in spec["parameters"][name].get("enum", [found[name]]) for name in names)


@pytest.mark.parametrize("partner", ["acme", "erp", "supplier-7"])
@pytest.mark.parametrize("document_type", sorted(DOCUMENT_TYPES))
def test_asyncapi_names_every_routing_key_the_gateway_publishes(
    document_type: str, partner: str
) -> None:
    document = asyncapi_for()
    assert address_matches(document, "events", routing_key(document_type, partner))
    outbound = DEFAULT_AMQP_ROUTING_KEY.format(document=document_type, partner=partner)
    assert address_matches(document, "partnerExchange", outbound)


def routing_key_sources() -> list[tuple[str, str]]:
    """Every `routing_key=` argument in the gateway's code, as (file:line, source text)."""
    found = []
    # actors/ and gateway/ make the keys; protocols/ only carries them, and gateway/store/
    # reads them back from rows.
    for folder in ("actors", "gateway"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            # The demo plays the ERP: its keys are not the gateway's.
            if path.name.startswith("demo") or "store" in path.relative_to(ROOT).parts:
                continue
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    for keyword in node.keywords:
                        if keyword.arg == "routing_key":
                            found.append(
                                (
                                    f"{path.relative_to(ROOT)}:{keyword.value.lineno}",
                                    ast.unparse(keyword.value),
                                )
                            )
    return found


def test_every_routing_key_the_code_publishes_comes_from_the_one_rule_asyncapi_describes() -> None:
    # A key is made by canonical.outbox.routing_key (the events channel), by an outbound
    # channel's template (the partnerExchange channel), or passed on from a stored row.
    allowed = re.compile(r"routing_key\(.*\)|[\w.]+\.routing_key_for\(.*\)|[\w.]+\.routing_key")
    sources = routing_key_sources()
    assert sources, "the scan found no publish at all"
    strays = [(where, text) for where, text in sources if not allowed.fullmatch(text)]
    assert strays == []


@pytest.mark.parametrize(
    ("args", "first"),
    [(["openapi", "--listener", "admin"], "openapi"), (["asyncapi"], "asyncapi")],
)
def test_cli_prints_the_document(args: list[str], first: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args], capture_output=True, cwd=ROOT, check=False
    )
    assert done.returncode == 0, done.stderr
    assert first in json.loads(done.stdout)


def test_cli_writes_the_document_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "partner.json"
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "openapi", "--out", str(out)],
        capture_output=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    validate_openapi(json.loads(out.read_text()))


def test_cli_says_why_it_cannot_write_and_exits_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "asyncapi", "--out", str(tmp_path / "no" / "a")],
        capture_output=True,
        cwd=ROOT,
        check=False,
        text=True,
    )
    assert done.returncode == 2
    assert "cannot write" in done.stderr
    assert "Traceback" not in done.stderr


def validator_at(document: dict[str, Any], pointer: str) -> jsonschema.Draft202012Validator:
    """A validator for the schema at `pointer` inside `document`, its `$ref`s resolved there."""
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    uri = "urn:contract"
    registry = Registry().with_resource(
        uri, Resource.from_contents(document, default_specification=DRAFT202012)
    )
    return jsonschema.Draft202012Validator({"$ref": f"{uri}#{pointer}"}, registry=registry)


@pytest.mark.parametrize("document_type", sorted(DOCUMENT_TYPES))
def test_a_message_the_gateway_publishes_matches_its_asyncapi_payload(document_type: str) -> None:
    document = asyncapi_for()
    envelope = new_envelope(
        sample_document(document_type), partner_id="acme", idempotency_key="k-1"
    )
    message = orjson.loads(encode_envelope(envelope))
    validator = validator_at(document, f"/components/messages/{document_type}/payload")
    assert [e.message for e in validator.iter_errors(message)] == []
    other = "invoice" if document_type != "invoice" else "purchase_order"
    mismatched = validator_at(document, f"/components/messages/{other}/payload")
    assert list(mismatched.iter_errors(message)), "a payload schema takes any document"


@pytest.mark.parametrize("document_type", sorted(DOCUMENT_TYPES))
def test_a_body_a_partner_posts_matches_the_webhook_request_schema(document_type: str) -> None:
    document = openapi_for("partner")
    path = f"/webhooks/{{partner}}/{document_type}".replace("~", "~0").replace("/", "~1")
    validator = validator_at(
        document, f"/paths/{path}/post/requestBody/content/application~1json/schema"
    )
    body = orjson.loads(sample_body(document_type))
    assert [e.message for e in validator.iter_errors(body)] == []
