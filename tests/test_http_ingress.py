"""The webhook ingress, driven through a real uvicorn on loopback with in-memory partner fakes."""

from __future__ import annotations

import base64
import hmac
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from standardwebhooks import Webhook

from canonical.errors import (
    FieldError,
    GatewayError,
    IdempotencyConflict,
    IdempotencyKeyReused,
    InvalidDocument,
    RateLimited,
    StoreUnavailable,
)
from protocols.http.asgi import Message
from protocols.http.contract import AcceptedResponse, IngressPolicy, WebhookRequest
from protocols.http.ingress import WebhookIngress
from protocols.http.server import serve
from protocols.http.signatures import decode_whsec, sign

pytestmark = pytest.mark.anyio

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
STRANGER_SECRET = "whsec_" + base64.b64encode(bytes(range(50, 82))).decode()
LIMIT = 1024
PO = b'{"po_number":"PO-1001","lines":[{"sku":"A-1","qty":12}]}'
ACCEPTED = b'{"message_ids":["0190b6f0-0000-7000-8000-000000000001"]}'
POLICIES = {
    "acme": IngressPolicy(
        keys=(decode_whsec(SECRET),),
        max_body_bytes=LIMIT,
        allowed_documents=frozenset({"purchase-order", "asn"}),
    )
}


class FakeDirectory:
    def lookup(self, partner_id: str, /) -> IngressPolicy | None:
        return POLICIES.get(partner_id)


class FakeAcceptor:
    """Records what it was handed; answers 202, a replay, or the refusal a test sets."""

    def __init__(self) -> None:
        self.requests: list[WebhookRequest] = []
        self.refusal: Exception | None = None
        self.replayed = False

    async def accept(self, request: WebhookRequest, /) -> AcceptedResponse:
        self.requests.append(request)
        if self.refusal is not None:
            raise self.refusal
        return AcceptedResponse(status=202, body=ACCEPTED, replayed=self.replayed)


def signed(
    body: bytes = PO,
    *,
    secret: str = SECRET,
    msg_id: str = "msg_1",
    at: datetime | None = None,
    content_type: str = "application/json",
) -> dict[str, str]:
    """Headers a partner using the reference library would send."""
    at = at or datetime.now(tz=UTC)
    return {
        "content-type": content_type,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body.decode()),
    }


@dataclass
class Ingress:
    client: httpx.AsyncClient
    acceptor: FakeAcceptor
    answers: list[tuple[str, str, int]]

    async def post(
        self, body: Any = PO, headers: Mapping[str, str] | None = None, path: str = "acme/asn"
    ) -> httpx.Response:
        if headers is None:
            headers = signed(body)
        return await self.client.post(f"/webhooks/{path}", content=body, headers=headers)


@pytest.fixture
async def ingress() -> AsyncIterator[Ingress]:
    """The ingress app served by a real uvicorn on 127.0.0.1, port chosen by the kernel."""
    acceptor = FakeAcceptor()
    answers: list[tuple[str, str, int]] = []
    app = WebhookIngress(
        FakeDirectory(), acceptor, on_answer=lambda *labels: answers.append(labels)
    )
    async with anyio.create_task_group() as task_group:
        port = await task_group.start(_serve_on_loopback, app)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            yield Ingress(client, acceptor, answers)
        task_group.cancel_scope.cancel()


async def _serve_on_loopback(app: WebhookIngress, *, task_status: Any) -> None:
    await serve(app, host="127.0.0.1", port=0, task_status=task_status)


def problem(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == response.status_code
    return body


# Accepted


async def test_signed_webhook_is_accepted_with_the_acceptors_answer(ingress: Ingress) -> None:
    response = await ingress.post()

    assert response.status_code == 202
    assert response.headers["content-type"] == "application/json"
    assert response.content == ACCEPTED
    assert "idempotent-replayed" not in response.headers


async def test_acceptor_receives_the_authenticated_request(ingress: Ingress) -> None:
    await ingress.post(path="acme/purchase-order")

    [request] = ingress.acceptor.requests
    assert (request.partner_id, request.document_type, request.body) == (
        "acme",
        "purchase-order",
        PO,
    )
    assert (request.webhook_id, request.idempotency_key) == ("msg_1", None)
    assert request.content_type == "application/json"


async def test_idempotency_key_header_is_handed_over_beside_the_webhook_id(
    ingress: Ingress,
) -> None:
    await ingress.post(headers={**signed(), "idempotency-key": '"order-77"'})

    [request] = ingress.acceptor.requests
    assert (request.webhook_id, request.idempotency_key) == ("msg_1", "order-77")


def signed_raw(
    msg_id: bytes, body: bytes = PO, extra: tuple[tuple[bytes, bytes], ...] = ()
) -> list[tuple[bytes, bytes]]:
    """Headers as raw bytes, signed over the exact `msg_id` bytes (which may not be ASCII).

    Parametrised tests take `partial(signed_raw, ...)` and sign when they run: signed at
    collection, a request of a late test would be past the five-minute tolerance.
    """
    now = int(time.time())
    signed_content = msg_id + f".{now}.".encode() + body
    digest = hmac.digest(decode_whsec(SECRET), signed_content, "sha256")
    return [
        (b"content-type", b"application/json"),
        (b"webhook-id", msg_id),
        (b"webhook-timestamp", str(now).encode()),
        (b"webhook-signature", b"v1," + base64.b64encode(digest)),
        *extra,
    ]


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        (partial(signed_raw, "msg_é".encode()), "webhook-id must be printable ASCII"),
        (partial(signed_raw, b"msg_\xe9"), "webhook-id must be printable ASCII"),
        (partial(signed_raw, b"m" * 129), "webhook-id is 129 characters; it may have at most 128"),
        (partial(signed_raw, b"m" * 255), "webhook-id is 255 characters; it may have at most 128"),
        (
            partial(signed_raw, b"msg_1", extra=((b"idempotency-key", "clé".encode()),)),
            "Idempotency-Key must be printable ASCII",
        ),
        (
            partial(signed_raw, b"msg_1", extra=((b"idempotency-key", b"k" * 256),)),
            "Idempotency-Key is 256 characters; it may have at most 255",
        ),
    ],
    ids=[
        "UTF-8 webhook-id",
        "latin-1 webhook-id",
        "webhook-id of 129",
        "webhook-id of 255",
        "UTF-8 key",
        "key of 256",
    ],
)
async def test_unusable_id_is_refused_with_400_after_authentication(
    ingress: Ingress, headers: Callable[[], list[tuple[bytes, bytes]]], detail: str
) -> None:
    response = await ingress.client.post("/webhooks/acme/asn", content=PO, headers=headers())

    assert response.status_code == 400
    assert problem(response)["detail"].startswith(detail)
    assert ingress.acceptor.requests == []


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        (partial(signed_raw, b"msg_\x7f"), "webhook-id must be printable ASCII"),
        (
            partial(signed_raw, b"msg_1", extra=((b"idempotency-key", b'"order\x01"'),)),
            "Idempotency-Key must be printable ASCII",
        ),
    ],
    ids=["DEL in webhook-id", "control character in key"],
)
async def test_control_character_in_an_id_is_refused_with_400(
    headers: Callable[[], list[tuple[bytes, bytes]]], detail: str
) -> None:
    # httptools refuses these itself, before the app; a server that lets them through must
    # not make them keys.
    acceptor = FakeAcceptor()
    transport = httpx.ASGITransport(app=WebhookIngress(FakeDirectory(), acceptor))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        response = await client.post("/webhooks/acme/asn", content=PO, headers=headers())

    assert response.status_code == 400
    assert problem(response)["detail"].startswith(detail)
    assert acceptor.requests == []


async def test_unusable_id_from_a_stranger_is_still_a_401(ingress: Ingress) -> None:
    headers = [
        (b"webhook-signature", b"v1,AAAA") if h[0] == b"webhook-signature" else h
        for h in signed_raw(b"m" * 200)
    ]

    response = await ingress.client.post("/webhooks/acme/asn", content=PO, headers=headers)

    assert response.status_code == 401


async def test_webhook_id_of_128_characters_is_accepted(ingress: Ingress) -> None:
    response = await ingress.post(headers=signed(msg_id="m" * 128))

    assert response.status_code == 202
    assert ingress.acceptor.requests[0].webhook_id == "m" * 128


async def test_replayed_answer_says_so_in_idempotent_replayed(ingress: Ingress) -> None:
    ingress.acceptor.replayed = True

    response = await ingress.post()

    assert response.status_code == 202
    assert response.headers["idempotent-replayed"] == "true"


async def test_json_content_type_with_parameters_is_accepted(ingress: Ingress) -> None:
    response = await ingress.post(headers=signed(content_type="Application/JSON; charset=utf-8"))

    assert response.status_code == 202


# Refused before the acceptor


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        (lambda: {"content-type": "application/json"}, "missing webhook-id"),
        (lambda: {**signed(), "webhook-signature": "v1,bm90IGl0"}, "no v1 signature"),
        (lambda: signed(secret=STRANGER_SECRET), "no v1 signature"),
        (lambda: signed(at=datetime(2020, 1, 1, tzinfo=UTC)), "too old"),
        (lambda: {**signed(), "webhook-signature": "v1"}, "no v1 signature"),
        (lambda: {**signed(), "webhook-timestamp": "soon"}, "malformed webhook-timestamp"),
    ],
    ids=["unsigned", "bad-signature", "wrong-secret", "stale", "entry-without-comma", "bad-ts"],
)
async def test_request_failing_the_signature_is_refused_with_401(
    ingress: Ingress, headers: Callable[[], dict[str, str]], detail: str
) -> None:
    # Signed when the test runs, not when it is collected: the tolerance is five minutes.
    response = await ingress.post(headers=headers())

    assert response.status_code == 401
    assert detail in problem(response)["detail"]
    assert ingress.acceptor.requests == []


async def test_document_the_partner_may_not_send_is_refused_with_403(ingress: Ingress) -> None:
    response = await ingress.post(path="acme/invoice")

    assert response.status_code == 403
    assert problem(response)["type"].endswith("/document-not-allowed")
    assert ingress.acceptor.requests == []


async def test_stranger_learns_nothing_about_allowed_documents(ingress: Ingress) -> None:
    response = await ingress.post(headers=signed(secret=STRANGER_SECRET), path="acme/invoice")

    assert response.status_code == 401


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("globex/asn", "unknown-partner"),
        ("acme", "not-found"),
        ("acme/asn/extra", "not-found"),
        ("/asn", "not-found"),
    ],
    ids=["unknown-partner", "no-document", "extra-segment", "empty-partner"],
)
async def test_unknown_partner_or_route_is_refused_with_404(
    ingress: Ingress, path: str, reason: str
) -> None:
    response = await ingress.post(path=path)

    assert response.status_code == 404
    assert problem(response)["type"].endswith(f"/{reason}")


async def test_path_outside_webhooks_is_refused_with_404(ingress: Ingress) -> None:
    response = await ingress.client.post("/healthz", content=PO, headers=signed())

    assert response.status_code == 404


async def test_get_on_a_webhook_route_is_refused_with_405_and_allow(ingress: Ingress) -> None:
    response = await ingress.client.get("/webhooks/acme/asn")

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert problem(response)["type"].endswith("/method-not-allowed")


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/jsonx", "application/x-www-form-urlencoded", ""]
)
async def test_body_that_is_not_json_is_refused_with_415(
    ingress: Ingress, content_type: str
) -> None:
    response = await ingress.post(headers=signed(content_type=content_type))

    assert response.status_code == 415
    assert ingress.acceptor.requests == []


async def test_missing_content_type_is_refused_with_415(ingress: Ingress) -> None:
    headers = signed()
    del headers["content-type"]

    response = await ingress.post(headers=headers)

    assert response.status_code == 415


async def test_body_over_the_partners_limit_is_refused_with_413(ingress: Ingress) -> None:
    body = b'{"pad":"' + b"x" * LIMIT + b'"}'

    response = await ingress.post(body=body, headers=signed(body))

    assert response.status_code == 413
    assert str(LIMIT) in problem(response)["detail"]
    assert ingress.acceptor.requests == []


async def test_body_exactly_at_the_limit_is_accepted(ingress: Ingress) -> None:
    body = b'{"pad":"' + b"x" * (LIMIT - 10) + b'"}'
    assert len(body) == LIMIT

    response = await ingress.post(body=body, headers=signed(body))

    assert response.status_code == 202


async def test_chunked_body_growing_past_the_limit_is_refused_with_413(ingress: Ingress) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b" " * 256

    response = await ingress.post(body=chunks(), headers=signed(b" " * 2048))

    assert response.status_code == 413
    assert ingress.acceptor.requests == []


async def test_connection_serves_the_next_request_after_a_413(ingress: Ingress) -> None:
    body = b" " * (4 * LIMIT)
    await ingress.post(body=body, headers=signed(body))

    response = await ingress.post()

    assert response.status_code == 202


# The acceptor's refusals, mapped to problem+json


@pytest.mark.parametrize(
    ("refusal", "status", "retry_after"),
    [
        (IdempotencyConflict("a request with key msg_1 is in flight"), 409, None),
        (IdempotencyKeyReused("key msg_1 was used with another body"), 422, None),
        (InvalidDocument("1 invalid field", errors=[FieldError("$.lines", "empty")]), 422, None),
        (RateLimited("40 requests/s allowed", retry_after=2.5), 429, "3"),
        (StoreUnavailable("disk full"), 503, "5"),
    ],
    ids=["in-flight", "key-reused", "invalid", "rate-limited", "store-down"],
)
async def test_acceptor_refusal_is_answered_as_problem_json(
    ingress: Ingress, refusal: GatewayError, status: int, retry_after: str | None
) -> None:
    ingress.acceptor.refusal = refusal

    response = await ingress.post()

    assert response.status_code == status
    body = problem(response)
    assert body["type"].endswith("/" + refusal.reason)
    assert body["detail"] == refusal.detail
    assert response.headers.get("retry-after") == retry_after


async def test_invalid_document_answer_lists_the_field_errors(ingress: Ingress) -> None:
    ingress.acceptor.refusal = InvalidDocument(
        "1 invalid field", errors=[FieldError("$.lines[0].qty", "Expected int, got str")]
    )

    response = await ingress.post()

    assert problem(response)["errors"] == [
        {"path": "$.lines[0].qty", "message": "Expected int, got str"}
    ]


async def test_unexpected_acceptor_failure_is_a_logged_500_problem(
    ingress: Ingress, caplog: pytest.LogCaptureFixture
) -> None:
    ingress.acceptor.refusal = RuntimeError("bug")

    response = await ingress.post()

    assert response.status_code == 500
    instance = problem(response)["instance"]
    assert instance.startswith("urn:uuid:")
    assert "RuntimeError" not in response.text
    assert any(instance in record.getMessage() for record in caplog.records)
    assert ingress.answers == [("acme", "asn", 500)]


# Every answer counted, every refusal logged


async def test_an_accepted_request_is_counted_with_its_partner_and_document(
    ingress: Ingress,
) -> None:
    await ingress.post()

    assert ingress.answers == [("acme", "asn", 202)]


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "labels", "reason"),
    [
        ("POST", "acme/asn", lambda: {"content-type": "application/json"}, PO, ("acme", "asn", 401),
         "signature-invalid"),
        ("POST", "acme/" + "x" * 500, lambda: {"content-type": "application/json"}, PO,
         ("acme", "_other", 401), "signature-invalid"),
        ("POST", "acme/invoice", None, PO, ("acme", "_other", 403), "document-not-allowed"),
        ("POST", "globex/asn", None, PO, ("_unknown", "_other", 404), "unknown-partner"),
        ("POST", "x" * 500 + "/asn", None, PO, ("_unknown", "_other", 404), "unknown-partner"),
        ("POST", "acme", None, PO, ("acme", "_other", 404), "not-found"),
        ("GET", "acme/asn", None, b"", ("acme", "asn", 405), "method-not-allowed"),
        ("POST", "acme/asn", None, b" " * (LIMIT + 1), ("acme", "asn", 413), "payload-too-large"),
        ("POST", "acme/asn", lambda: signed(content_type="text/csv"), PO, ("acme", "asn", 415),
         "unsupported-media-type"),
        ("POST", "acme/asn", lambda: {**signed(), "idempotency-key": "k" * 256}, PO,
         ("acme", "asn", 400),
         "bad-request"),
    ],
    ids=["401", "401-junk-document", "403", "404-partner", "404-junk-partner", "404-route",
         "405", "413", "415", "400"],
)  # fmt: skip
async def test_a_refusal_is_counted_with_bounded_labels_and_logged_with_its_reason(
    ingress: Ingress,
    caplog: pytest.LogCaptureFixture,
    method: str,
    path: str,
    headers: Callable[[], dict[str, str]] | None,  # signed when the test runs
    body: bytes,
    labels: tuple[str, str, int],
    reason: str,
) -> None:
    caplog.set_level(logging.INFO, logger="protocols.http.ingress")
    response = await ingress.client.request(
        method,
        f"/webhooks/{path}",
        content=body,
        headers=signed(body) if headers is None else headers(),
    )

    assert response.status_code == labels[2]
    assert ingress.answers == [labels]
    [record] = [r for r in caplog.records if r.name == "protocols.http.ingress"]
    assert record.levelno == logging.INFO
    assert record.fields == {
        "partner": labels[0],
        "document": labels[1],
        "status": labels[2],
        "reason": reason,
    }
    assert problem(response)["detail"] in record.getMessage()


async def test_an_acceptor_refusal_is_counted_and_logged(
    ingress: Ingress, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="protocols.http.ingress")
    ingress.acceptor.refusal = RateLimited("40 requests/s allowed", retry_after=2.5)

    await ingress.post()

    assert ingress.answers == [("acme", "asn", 429)]
    assert "rate-limited" in caplog.text


# Straight to the ASGI app: what is and is not read


async def call_app(
    app: WebhookIngress, headers: list[tuple[bytes, bytes]], receive: Any
) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/webhooks/acme/asn",
        "headers": headers,
    }
    await app(scope, receive, send)
    return sent


async def test_oversized_content_length_is_refused_before_the_body_is_read() -> None:
    async def receive() -> Message:
        raise AssertionError("the body was read")

    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % (LIMIT + 1))]
    sent = await call_app(WebhookIngress(FakeDirectory(), FakeAcceptor()), headers, receive)

    assert sent[0]["status"] == 413


async def test_endless_body_is_refused_once_past_the_limit_and_reading_stops() -> None:
    received = 0

    async def receive() -> Message:
        nonlocal received
        received += 1
        return {"type": "http.request", "body": b"x" * 100, "more_body": True}

    headers = [(b"content-type", b"application/json")]
    sent = await call_app(WebhookIngress(FakeDirectory(), FakeAcceptor()), headers, receive)

    assert sent[0]["status"] == 413
    assert received == LIMIT // 100 + 1


async def test_client_that_disconnects_mid_body_gets_no_answer() -> None:
    messages: Iterator[Message] = iter(
        [
            {"type": "http.request", "body": b"{", "more_body": True},
            {"type": "http.disconnect"},
        ]
    )

    async def receive() -> Message:
        return next(messages)

    acceptor = FakeAcceptor()
    headers = [(b"content-type", b"application/json")]
    sent = await call_app(WebhookIngress(FakeDirectory(), acceptor), headers, receive)

    assert (sent, acceptor.requests) == ([], [])


def body_of(body: bytes) -> Any:
    """A `receive` that hands over `body` in one message."""

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def raw_signed(body: bytes = PO) -> list[tuple[bytes, bytes]]:
    """`signed()` as ASGI header tuples, the signature header last."""
    return [(name.encode(), value.encode()) for name, value in signed(body).items()]


# A signature entry of 1 KB that matches no key: what a hostile repeat of the header carries.
JUNK_ENTRY = b"v1," + b"A" * 1021


async def test_thousands_of_repeated_signature_headers_are_read_in_linear_time() -> None:
    # Joined pairwise, 2,000 such headers copied ~2 GB and held the event loop 5 s.
    headers = raw_signed() + [(b"webhook-signature", JUNK_ENTRY)] * 2000
    app = WebhookIngress(FakeDirectory(), FakeAcceptor())

    started = time.perf_counter()
    sent = await call_app(app, headers, body_of(PO))
    elapsed = time.perf_counter() - started

    assert sent[0]["status"] == 202
    assert elapsed < 0.5


@pytest.mark.parametrize(("junk", "status"), [(15, 202), (16, 401)], ids=["16th", "17th"])
async def test_signature_entries_past_the_cap_are_not_collected(junk: int, status: int) -> None:
    # The valid entry comes after `junk` repeated headers: within the first 16 entries it is
    # looked at, past them it is not, however the entries are spread over headers.
    valid = signed()["webhook-signature"].encode()
    headers = [name_value for name_value in raw_signed() if name_value[0] != b"webhook-signature"]
    headers += [(b"webhook-signature", b"v1,AAAA v1a,BBBB")] * (junk // 2)
    headers += [(b"webhook-signature", b"v1,CCCC")] * (junk % 2)
    headers += [(b"webhook-signature", valid)]

    sent = await call_app(WebhookIngress(FakeDirectory(), FakeAcceptor()), headers, body_of(PO))

    assert sent[0]["status"] == status


async def test_lifespan_scope_is_declined_without_messages() -> None:
    async def receive() -> Message:
        raise AssertionError("nothing to receive")

    async def send(message: Message) -> None:
        raise AssertionError("nothing to send")

    await WebhookIngress(FakeDirectory(), FakeAcceptor())({"type": "lifespan"}, receive, send)


# Anything a stranger can send


header_bytes = st.binary(max_size=60).filter(lambda value: not set(value) & set(b"\r\n\x00"))


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, bytes, list[tuple[bytes, bytes]]]:
    """A request of random shape: each part right more often than not, or random, or missing."""
    method = draw(st.sampled_from(["POST"] * 8 + ["GET", "PUT"]))
    path = draw(
        st.sampled_from(
            [
                *["/webhooks/acme/asn"] * 6,
                *["/webhooks/acme/invoice"] * 2,
                "/webhooks/globex/asn",
                "/webhooks/acme",
                "/webhooks/acme/asn/x",
                "/other",
            ]
        )
    )
    body = draw(
        st.one_of(
            st.just(PO), st.binary(max_size=64), st.binary(min_size=LIMIT - 8, max_size=LIMIT + 8)
        )
    )
    now = int(time.time())
    timestamp = draw(st.sampled_from([now, now, now - 1000, now + 1000]))
    msg_id = draw(st.sampled_from([b"msg_1", "msg_é".encode()]))
    valid = sign(decode_whsec(SECRET), msg_id.decode(), timestamp, body).encode()
    wrong_key = sign(decode_whsec(STRANGER_SECRET), "msg_1", timestamp, body).encode()
    parts = {
        b"content-type": (b"application/json; charset=utf-8", st.just(b"text/plain")),
        b"content-length": (str(len(body)).encode(), st.just(b"-1")),
        b"webhook-id": (msg_id, st.nothing()),
        b"webhook-timestamp": (str(timestamp).encode(), st.just(b"1e9")),
        b"webhook-signature": (
            draw(st.sampled_from([valid, b"v1,AAAA " + valid, b"v1a,x " + valid])),
            st.sampled_from([wrong_key, b"v1", b"v1,", b",", b"v1," + valid[3:20]]),
        ),
        b"idempotency-key": (b'"order-1"', st.nothing()),
    }
    headers: list[tuple[bytes, bytes]] = []
    for name, (right, wrong) in parts.items():
        shape = draw(st.sampled_from(["right", "right", "right", "wrong", "random", "missing"]))
        if shape == "right":
            headers.append((name, right))
        elif shape == "wrong":
            headers.append((name, draw(st.one_of(wrong, header_bytes))))
        elif shape == "random":
            headers.append((name, draw(header_bytes)))
    return method, path, body, headers


@settings(max_examples=400, deadline=None)
@given(request=requests())
async def test_no_request_gets_a_500_and_refused_ones_never_reach_the_acceptor(
    request: tuple[str, str, bytes, list[tuple[bytes, bytes]]],
) -> None:
    method, path, body, headers = request
    acceptor = FakeAcceptor()
    transport = httpx.ASGITransport(app=WebhookIngress(FakeDirectory(), acceptor))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        response = await client.request(method, path, content=body, headers=headers)

    event(f"status {response.status_code}")
    assert response.status_code in {202, 400, 401, 403, 404, 405, 413, 415}
    if response.status_code == 202:
        assert len(acceptor.requests) == 1
    else:
        assert acceptor.requests == []
        assert problem(response)["status"] == response.status_code
