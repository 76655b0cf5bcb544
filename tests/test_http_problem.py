"""RFC 9457 problem+json: every GatewayError answers with its status, type, detail and headers."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from canonical.errors import (
    DocumentNotAllowed,
    FieldError,
    GatewayError,
    IdempotencyConflict,
    IdempotencyKeyReused,
    InvalidDocument,
    PayloadTooLarge,
    RateLimited,
    SignatureInvalid,
    StoreUnavailable,
    UnknownPartner,
    UnsupportedMediaType,
)
from protocols.http.problem import (
    PROBLEM_TYPE_BASE,
    MethodNotAllowed,
    RouteNotFound,
    problem_response,
)


def decoded(error: GatewayError, instance: str | None = "/webhooks/acme/po") -> dict[str, Any]:
    _, _, body = problem_response(error, instance=instance)
    problem: dict[str, Any] = orjson.loads(body)
    return problem


def header(error: GatewayError, name: bytes) -> bytes | None:
    _, headers, _ = problem_response(error, instance=None)
    return dict(headers).get(name)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (RouteNotFound("no such path"), 404),
        (UnknownPartner("no partner 'x'"), 404),
        (MethodNotAllowed("GET is not allowed here", allow=("POST",)), 405),
        (SignatureInvalid("missing webhook-id header"), 401),
        (DocumentNotAllowed("partner may not send 'invoice'"), 403),
        (IdempotencyConflict("in flight"), 409),
        (PayloadTooLarge("too big"), 413),
        (UnsupportedMediaType("not json"), 415),
        (InvalidDocument("bad"), 422),
        (IdempotencyKeyReused("other body"), 422),
        (RateLimited("slow down", retry_after=1), 429),
        (StoreUnavailable("disk full"), 503),
        (GatewayError("unexpected error"), 500),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, GatewayError) else str(value),
)
def test_problem_carries_the_errors_status_title_type_and_detail(
    error: GatewayError, status: int
) -> None:
    answered_status, headers, body = problem_response(error, instance="/webhooks/acme/po")

    assert answered_status == status
    assert dict(headers)[b"content-type"] == b"application/problem+json"
    assert orjson.loads(body) == {
        "type": PROBLEM_TYPE_BASE + error.reason,
        "title": error.title,
        "status": status,
        "detail": error.detail,
        "instance": "/webhooks/acme/po",
    }


def test_reasons_sharing_a_status_have_distinct_types() -> None:
    assert decoded(InvalidDocument("bad"))["type"] != decoded(IdempotencyKeyReused("other"))["type"]


def test_instance_is_left_out_when_not_given() -> None:
    assert "instance" not in decoded(SignatureInvalid("stale"), instance=None)


def test_invalid_document_lists_each_field_error() -> None:
    error = InvalidDocument(
        "2 invalid fields",
        errors=[
            FieldError("$.lines[2].quantity", "Expected int, got str"),
            FieldError("$.po_number", "Object missing required field"),
        ],
    )

    assert decoded(error)["errors"] == [
        {"path": "$.lines[2].quantity", "message": "Expected int, got str"},
        {"path": "$.po_number", "message": "Object missing required field"},
    ]


@pytest.mark.parametrize(
    ("error", "retry_after"),
    [
        (RateLimited("slow down", retry_after=0.2), b"1"),
        (RateLimited("slow down", retry_after=2), b"2"),
        (RateLimited("slow down", retry_after=2.01), b"3"),
        (RateLimited("slow down", retry_after=0), b"0"),
        (StoreUnavailable("disk full"), b"5"),
        (StoreUnavailable("disk full", retry_after=7.5), b"8"),
    ],
    ids=["0.2s", "2s", "2.01s", "0s", "store-default", "store-7.5s"],
)
def test_retry_after_is_whole_seconds_rounded_up(error: GatewayError, retry_after: bytes) -> None:
    assert header(error, b"retry-after") == retry_after


def test_errors_without_a_retry_hint_send_no_retry_after() -> None:
    assert header(IdempotencyConflict("in flight"), b"retry-after") is None


def test_non_finite_retry_after_is_left_out_rather_than_failing() -> None:
    assert header(RateLimited("slow down", retry_after=float("inf")), b"retry-after") is None


def test_method_not_allowed_names_the_allowed_methods() -> None:
    error = MethodNotAllowed("GET is not allowed here", allow=("POST",))

    assert header(error, b"allow") == b"POST"
