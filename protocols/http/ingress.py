"""The webhook ingress: an ASGI app for `POST /webhooks/{partner}/{document}`.

Checks run cheapest-first and each failure answers at once with problem+json; nothing is stored
and the acceptor is not called:

1. route and method (404, 405);
2. partner known (404);
3. Content-Type is application/json, parameters allowed (415);
4. Content-Length within the partner's limit, before any body is read (413);
5. room for the body among the bytes in flight, overall and the partner's (`budget.py`),
   waited for a bounded time (503 with Retry-After), held until the answer is ready;
6. the body, read only up to the limit: a chunked body that grows past it is refused as soon as
   it does, and reading stops (413);
7. the Standard Webhooks signature (401);
8. document type allowed for this partner (403), only after authentication, so a stranger
   cannot learn which documents a partner may send.

Then the acceptor answers (202, or a GatewayError such as 409/422/429/503). A body the app did
not read is discarded by the server without buffering, and the connection stays usable: closing
it mid-upload would often reset the socket before the partner had read the 413.

Every answer is reported to `on_answer` as (partner, document, status), the labels bounded
whatever the path says: a partner the directory does not know is `UNKNOWN_PARTNER`, a document
the partner may not send is `OTHER_DOCUMENT`. Every refusal is also logged at INFO with its
reason, so a partner's failing signatures or a flood of unknown paths leave a trace.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Annotated

import msgspec

from canonical.common import PartnerId
from canonical.documents import DOCUMENT_TYPES
from canonical.envelope import MAX_ID_LENGTH, MAX_IDEMPOTENCY_KEY_LENGTH
from canonical.errors import (
    DocumentNotAllowed,
    GatewayError,
    PayloadTooLarge,
    UnknownPartner,
    UnsupportedMediaType,
)
from canonical.ids import new_message_id
from canonical.tracecontext import parse_traceparent
from canonical.tracing import Tracer, answered_in

from .asgi import ClientDisconnected, Headers, Receive, Scope, Send, read_body, send_response
from .budget import BodyBudget
from .contract import AcceptedResponse, Acceptor, PartnerDirectory, WebhookRequest
from .operations import Operation, Parameter, Response
from .problem import BadRequest, MethodNotAllowed, Problem, RouteNotFound, problem_response
from .signatures import DEFAULT_TOLERANCE_SECONDS, MAX_SIGNATURE_ENTRIES, verify_raw

__all__ = [
    "OPERATIONS",
    "OTHER_DOCUMENT",
    "UNKNOWN_PARTNER",
    "WEBHOOK_PATH_PREFIX",
    "AnswerObserver",
    "WebhookIngress",
]

logger = logging.getLogger(__name__)

WEBHOOK_PATH_PREFIX = "/webhooks/"
# Label values no partner id or document type can take (both start with a letter or digit).
UNKNOWN_PARTNER = "_unknown"
OTHER_DOCUMENT = "_other"

AnswerObserver = Callable[[str, str, int], None]
"""Told of every answer the ingress sends: (partner, document, status), bounded labels."""

_JSON_HEADERS: Headers = ((b"content-type", b"application/json"),)
_REPLAYED_HEADERS: Headers = (*_JSON_HEADERS, (b"idempotent-replayed", b"true"))
# Longer than any sane Content-Length; also keeps int() away from its digit limit.
_MAX_LENGTH_DIGITS = 18
# Header values echoed into a problem detail are cut to this many characters.
_ECHO_LIMIT = 80

# The request headers the ingress reads, by position in the tuple `_read_headers` returns.
_WANTED = {
    b"content-type": 0,
    b"content-length": 1,
    b"webhook-id": 2,
    b"webhook-timestamp": 3,
    b"webhook-signature": 4,
    b"idempotency-key": 5,
    b"traceparent": 6,
}
_SIGNATURE = 4


class WebhookIngress:
    """ASGI app that authenticates partner webhooks and hands them to an `Acceptor`."""

    def __init__(
        self,
        directory: PartnerDirectory,
        acceptor: Acceptor,
        *,
        tolerance: float = DEFAULT_TOLERANCE_SECONDS,
        clock: Callable[[], float] = time.time,
        on_answer: AnswerObserver | None = None,
        budget: BodyBudget | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self._directory = directory
        self._acceptor = acceptor
        self._tolerance = tolerance
        self._clock = clock
        self._on_answer = on_answer or _ignore
        self._budget = budget or BodyBudget()
        self._tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Lifespan and websocket scopes have nothing to do here; returning declines them.
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        try:
            status, headers, body = await self._answer(scope, receive)
        except GatewayError as error:
            status, headers, body = problem_response(error, instance=path)
            self._refused(scope, error)
        except ClientDisconnected:
            return
        except Exception:
            # An occurrence id the partner can quote and the log can be searched for.
            instance = f"urn:uuid:{new_message_id()}"
            logger.exception("unexpected error on %s %s (%s)", scope["method"], path, instance)
            internal = GatewayError("unexpected error; it has been logged")
            status, headers, body = problem_response(internal, instance=instance)
            self._on_answer(*self._labels(path), status)
        await send_response(send, status, headers, body)

    def _refused(self, scope: Scope, error: GatewayError) -> None:
        """Count a refusal and log it with its reason (the detail's echoes are cut short)."""
        partner, document = self._labels(scope["path"])
        self._on_answer(partner, document, error.status)
        logger.info(
            "refused %s with %d %s: %s",
            scope["method"][:_ECHO_LIMIT],
            error.status,
            error.reason,
            error.detail,
            extra={
                "fields": {
                    "partner": partner,
                    "document": document,
                    "status": error.status,
                    "reason": error.reason,
                }
            },
        )

    def _labels(self, path: str) -> tuple[str, str]:
        """(partner, document) for metrics and logs: only values the configuration bounds."""
        if not path.startswith(WEBHOOK_PATH_PREFIX):
            return UNKNOWN_PARTNER, OTHER_DOCUMENT
        partner_id, _, document_type = path[len(WEBHOOK_PATH_PREFIX) :].partition("/")
        policy = self._directory.lookup(partner_id)
        if policy is None:
            return UNKNOWN_PARTNER, OTHER_DOCUMENT
        if document_type not in policy.allowed_documents:
            return partner_id, OTHER_DOCUMENT
        return partner_id, document_type

    async def _answer(self, scope: Scope, receive: Receive) -> tuple[int, Headers, bytes]:
        """Run the checks in order, then the acceptor; return status, headers and body."""
        partner_id, document_type = _route(scope["path"], scope["method"])
        policy = self._directory.lookup(partner_id)
        if policy is None:
            raise UnknownPartner(f"no partner {_echo(partner_id)}")
        (
            content_type,
            content_length,
            webhook_id,
            timestamp,
            signature,
            idempotency_key,
            traceparent,
        ) = _read_headers(scope["headers"])
        content_type_text = _checked_content_type(content_type)
        limit = policy.max_body_bytes
        # Room among the bytes in flight (budget.py) before the body is read, given back once
        # the answer is ready: everything made from the body in between lives inside it.
        room = self._budget.room_for(_declared_length(content_length, limit))
        if not self._budget.take_nowait(partner_id, room):
            await self._budget.take(partner_id, room)
        try:
            body = await read_body(receive, limit)
            received_at = self._clock()
            sent_at = verify_raw(
                policy.keys,
                webhook_id,
                timestamp,
                signature,
                body,
                now=received_at,
                tolerance=self._tolerance,
            )
            if document_type not in policy.allowed_documents:
                raise DocumentNotAllowed(f"partner may not send {_echo(document_type)}")
            # verify_raw has refused a missing or empty webhook-id by now. The webhook-id is
            # signed and always a dedup key; an Idempotency-Key is a second one (README).
            webhook_id_text = _webhook_id(webhook_id or b"")
            request = WebhookRequest(
                partner_id=partner_id,
                document_type=document_type,
                body=body,
                webhook_id=webhook_id_text,
                timestamp=sent_at,
                idempotency_key=_idempotency_key(idempotency_key),
                content_type=content_type_text,
                received_at=received_at,
                # Ignored when invalid (Trace Context: restart the trace), never a 4xx.
                traceparent=parse_traceparent(traceparent) if traceparent else None,
            )
            if self._tracer is None:
                accepted = await self._acceptor.accept(request)
            else:
                accepted = await self._traced_accept(self._tracer, request)
            self._on_answer(partner_id, document_type, accepted.status)
            headers = _REPLAYED_HEADERS if accepted.replayed else _JSON_HEADERS
            return accepted.status, headers, accepted.body
        finally:
            self._budget.give(partner_id, room)

    async def _traced_accept(self, tracer: Tracer, request: WebhookRequest) -> AcceptedResponse:
        """Accept inside the ingress span, which the message's envelope then continues.

        The span starts once the request is authenticated: a stranger's requests (bad paths,
        bad signatures) record nothing, so they cannot flood the collector. Its parent is the
        partner's `traceparent`; without one it starts the trace.
        """
        span = tracer.start(
            "webhook ingress",
            request.traceparent,
            kind="server",
            attributes={
                "http.request.method": "POST",
                "gateway.partner": request.partner_id,
                "gateway.document_type": request.document_type,
                "gateway.webhook_id": request.webhook_id,
            },
        )
        request = msgspec.structs.replace(request, traceparent=span.traceparent)
        return await answered_in(span, self._acceptor.accept(request))


def _route(path: str, method: str) -> tuple[str, str]:
    """Return (partner, document) from `/webhooks/{partner}/{document}`, or raise 404/405."""
    if not path.startswith(WEBHOOK_PATH_PREFIX):
        raise RouteNotFound("no such path")
    partner_id, slash, document_type = path[len(WEBHOOK_PATH_PREFIX) :].partition("/")
    if not (partner_id and slash and document_type) or "/" in document_type:
        raise RouteNotFound("no such path; webhooks go to /webhooks/{partner}/{document}")
    if method != "POST":
        raise MethodNotAllowed(f"{_echo(method)} is not allowed here", allow=("POST",))
    return partner_id, document_type


def _read_headers(raw: Iterable[tuple[bytes, bytes]]) -> list[bytes | None]:
    """Pick the headers the ingress reads out of the ASGI list, in one pass.

    The first occurrence of a header wins, except `webhook-signature`, whose repeats are joined
    with a space: a proxy may have split the entry list across lines. Repeats are collected
    only until they hold the `MAX_SIGNATURE_ENTRIES` entries verification looks at, and joined
    once: a request with thousands of them costs one pass, not a copy per repeat.
    """
    found: list[bytes | None] = [None] * len(_WANTED)
    signatures: list[bytes] | None = None  # from the first repeat on
    entries = 0
    for name, value in raw:
        index = _WANTED.get(name)
        if index is None:
            continue
        first = found[index]
        if first is None:
            found[index] = value
        elif index == _SIGNATURE and entries < MAX_SIGNATURE_ENTRIES:
            if signatures is None:
                signatures = [first]
                entries = _entry_count(first)
            if entries < MAX_SIGNATURE_ENTRIES:
                signatures.append(value)
                entries += _entry_count(value)
    if signatures is not None:
        found[_SIGNATURE] = b" ".join(signatures)
    return found


def _entry_count(value: bytes) -> int:
    """Count a signature header's space-separated entries, stopping past the cap."""
    return len(value.split(maxsplit=MAX_SIGNATURE_ENTRIES))


def _checked_content_type(content_type: bytes | None) -> str:
    """Return the Content-Type as sent; raise 415 unless it is application/json (parameters ok)."""
    if content_type is None:
        raise UnsupportedMediaType("Content-Type must be application/json; none was sent")
    text = content_type.decode("latin-1")
    if text.partition(";")[0].strip().lower() != "application/json":
        raise UnsupportedMediaType(f"Content-Type must be application/json, not {_echo(text)}")
    return text


def _declared_length(content_length: bytes | None, limit: int) -> int:
    """Return the body size a request announces: its Content-Length, else `limit`.

    Raises 413 when the Content-Length announces more than `limit` bytes, before any body is
    read. A chunked body (no Content-Length) may grow to `limit`; so may one whose value is
    malformed, which is left to the body count (a real server rejects it earlier).
    """
    if content_length is None or not content_length.isdigit():
        return limit
    if len(content_length) > _MAX_LENGTH_DIGITS or (declared := int(content_length)) > limit:
        raise PayloadTooLarge(f"Content-Length exceeds this partner's limit of {limit} bytes")
    return declared


def _printable_ascii(header: str, raw: bytes) -> str:
    """Return an id header as text; raise 400 unless it is printable ASCII (0x20-0x7E).

    Standard Webhooks ids and the Idempotency-Key draft's structured-field strings are made of
    these. Any other byte would need a guess at its encoding before it became a dedup key and
    an envelope field, and two guesses would make two keys of one id.
    """
    if not (raw.isascii() and (text := raw.decode("ascii")).isprintable()):
        raise BadRequest(f"{header} must be printable ASCII (0x20-0x7E)")
    return text


def _webhook_id(raw: bytes) -> str:
    """Return the webhook-id; 400 unless printable ASCII and short enough to be an envelope id."""
    text = _printable_ascii("webhook-id", raw)
    if len(text) > MAX_ID_LENGTH:
        raise BadRequest(
            f"webhook-id is {len(text)} characters; it may have at most {MAX_ID_LENGTH} "
            "(it becomes the message's causation_id)"
        )
    return text


def _idempotency_key(raw: bytes | None) -> str | None:
    """Return the Idempotency-Key header's key, or None when absent or empty; 400 if unusable.

    The IETF draft defines the value as a structured-field string (`"abc"`); many clients send
    a bare token (`abc`). Both give the key `abc`.
    """
    if not raw:
        return None
    text = _printable_ascii("Idempotency-Key", raw).strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        text = text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if len(text) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise BadRequest(
            f"Idempotency-Key is {len(text)} characters; it may have at most "
            f"{MAX_IDEMPOTENCY_KEY_LENGTH}"
        )
    return text or None


def _ignore(partner: str, document: str, status: int) -> None:
    """The default `on_answer`: nobody counts."""


def _echo(value: str) -> str:
    """Quote a client-supplied value for a problem detail, cut to a readable length."""
    if len(value) > _ECHO_LIMIT:
        value = value[:_ECHO_LIMIT] + "..."
    return repr(value)


# The contract (gateway/contracts/openapi.py turns these into OpenAPI): one operation per
# document type, so each path names the body it takes.


class WebhookAccepted(msgspec.Struct, frozen=True, kw_only=True):
    """The 202 answer: the message made of the document, and the thread it belongs to."""

    status: str
    message_ids: list[str]
    correlation_id: str


_PROBLEM = "application/problem+json"
_SIGNED = (
    Parameter(
        name="webhook-id",
        where="header",
        type=Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)],
        required=True,
        description="Standard Webhooks message id: printable ASCII, the dedup key",
    ),
    Parameter(
        name="webhook-timestamp",
        where="header",
        required=True,
        description="Standard Webhooks timestamp, unix seconds, within the tolerance of now",
    ),
    Parameter(
        name="webhook-signature",
        where="header",
        required=True,
        description="Standard Webhooks signatures (`v1,<base64 HMAC-SHA256>`, space-separated)",
    ),
    Parameter(
        name="Idempotency-Key",
        where="header",
        description="A second dedup key (IETF draft); the first answer is replayed for it",
    ),
    Parameter(
        name="traceparent",
        where="header",
        description="W3C Trace Context; carried to the ERP and the partners' webhooks. "
        "An invalid value is ignored",
    ),
)


def _webhook_operation(document_type: str, body: type) -> Operation:
    return Operation(
        method="POST",
        path=f"{WEBHOOK_PATH_PREFIX}{{partner}}/{document_type}",
        operation_id=f"post_{document_type}",
        summary=f"Send one {document_type} document, signed per Standard Webhooks",
        tags=("webhooks",),
        parameters=(
            Parameter(name="partner", where="path", type=PartnerId, required=True),
            *_SIGNED,
        ),
        request_body=body,
        security=("webhook",),
        responses=(
            Response(
                status=202,
                description="Durably accepted (replayed for a repeated key)",
                body=WebhookAccepted,
                headers=("Idempotent-Replayed",),
            ),
            Response(
                status=400, description="Unusable ids or headers", body=Problem, media_type=_PROBLEM
            ),
            Response(
                status=401,
                description="Signature missing, invalid or stale",
                body=Problem,
                media_type=_PROBLEM,
            ),
            Response(
                status=403,
                description="Document not allowed for this partner",
                body=Problem,
                media_type=_PROBLEM,
            ),
            Response(status=404, description="Unknown partner", body=Problem, media_type=_PROBLEM),
            Response(
                status=409,
                description="A request with this key is in flight",
                body=Problem,
                media_type=_PROBLEM,
            ),
            Response(
                status=413,
                description="Body over the partner's limit",
                body=Problem,
                media_type=_PROBLEM,
            ),
            Response(
                status=415,
                description="Content-Type is not application/json",
                body=Problem,
                media_type=_PROBLEM,
            ),
            Response(
                status=422,
                description="Invalid document, or a key reused for another body",
                body=Problem,
                media_type=_PROBLEM,
            ),
            Response(
                status=429,
                description="Over the partner's rate",
                body=Problem,
                media_type=_PROBLEM,
                headers=("Retry-After",),
            ),
            Response(
                status=503,
                description="No room or the store cannot commit; retry later",
                body=Problem,
                media_type=_PROBLEM,
                headers=("Retry-After",),
            ),
        ),
    )


OPERATIONS: tuple[Operation, ...] = tuple(
    _webhook_operation(name, cls) for name, cls in sorted(DOCUMENT_TYPES.items())
)
