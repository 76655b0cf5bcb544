"""The customer API's ASGI app: one starlette router, one problem+json mapping for every error.

Routes (all under `/api/v1`, every one behind the account's API key):
- `GET /availability?sku=..&sku=..&location=..`: the availability read model, as of when.
- `POST /orders` with `Idempotency-Key`: the order committed before the 202 answer.
- `GET /orders/{order_id}`: the order's status as last learned, `stale` when it is old.

Errors of any kind leave as RFC 9457 problem+json (protocols/http/problem.py), the router's
own 404 and 405 included; a bug answers 500 problem+json and is logged, never a traceback.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

import msgspec
from msgspec import Struct
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router

from canonical.errors import (
    FieldError,
    GatewayError,
    InvalidDocument,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from canonical.tracecontext import parse_traceparent

from ..asgi import (
    ASGIApp,
    ClientDisconnected,
    Message,
    Receive,
    Scope,
    Send,
    read_body,
    send_response,
)
from ..problem import BadRequest, MethodNotAllowed, RouteNotFound, problem_response
from ..routing import NotFound
from .accounts import Account, Accounts
from .models import OrderRequest
from .ports import AvailabilitySource, OrderDesk

__all__ = ["API_PREFIX", "MAX_IDEMPOTENCY_KEY_CHARS", "ApiLimits", "customer_api"]

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
# The IETF draft sets no length; Stripe takes up to 255 characters, and so do we.
MAX_IDEMPOTENCY_KEY_CHARS = 255
_JSON = "application/json"
_ORDER = msgspec.json.Decoder(OrderRequest)
_encoder = msgspec.json.Encoder()


class _AvailabilityWire(Struct, frozen=True, kw_only=True):
    # AvailabilityAnswer's fields in its order, the items pre-encoded (the contract documents
    # AvailabilityAnswer; test_customer_api_http checks the answers against it).
    as_of: dt.datetime | None
    items: msgspec.Raw  # the rows' JSON array
    unknown: tuple[str, ...]


class ApiLimits(Struct, frozen=True, kw_only=True):
    """The bounds and the catalogue the API checks requests against (`[customer_api]`)."""

    max_skus: int = 100
    max_body_bytes: int = 256 * 1024
    max_lines: int = 500
    max_quantity: int = 1_000_000
    items: frozenset[str] = frozenset()  # empty: any SKU


def customer_api(
    accounts: Accounts, availability: AvailabilitySource, desk: OrderDesk, limits: ApiLimits
) -> ASGIApp:
    """Return the customer API as an ASGI app, errors mapped to problem+json."""
    handlers = _Handlers(accounts, availability, desk, limits)
    router = Router(
        routes=[
            Route(_AVAILABILITY, handlers.availability, methods=["GET"]),
            Route(f"{API_PREFIX}/orders", handlers.submit, methods=["POST"]),
            Route(f"{API_PREFIX}/orders/{{order_id}}", handlers.order, methods=["GET"]),
        ]
    )
    return _Problems(router, availability=handlers.availability_of)


_AVAILABILITY = f"{API_PREFIX}/availability"
_JSON_HEADERS = [(b"content-type", _JSON.encode())]


def _availability_query(raw: bytes) -> tuple[list[str], str | None]:
    """The SKUs (in order, once each) and the location of a query string, parsed as starlette
    parses it (latin-1, then `parse_qsl` with blank values kept; plain pieces split directly)."""
    text = raw.decode("latin-1")
    if "%" in text or "+" in text:
        pairs = parse_qsl(text, keep_blank_values=True)
    else:
        pairs = [(n, v) for n, _, v in (piece.partition("=") for piece in text.split("&") if piece)]
    skus: dict[str, None] = {}
    location = ""
    for name, value in pairs:
        if name == "sku":
            skus[value] = None
        elif name == "location":
            location = value  # the last one, as starlette's `query_params.get` answers
    return list(skus), location or None


class _Handlers:
    def __init__(
        self,
        accounts: Accounts,
        availability: AvailabilitySource,
        desk: OrderDesk,
        limits: ApiLimits,
    ) -> None:
        self.accounts = accounts
        self.source = availability
        self.desk = desk
        self.limits = limits

    def _account(self, request: Request) -> Account:
        return self.accounts.authenticate(request.scope["headers"])

    async def availability(self, request: Request) -> Response:
        return Response(await self.availability_of(request.scope), 200, media_type=_JSON)

    async def availability_of(self, scope: Scope) -> bytes:
        """The answer to `GET /api/v1/availability` as JSON, from the request's scope alone."""
        account = self.accounts.authenticate(scope["headers"])
        skus, location = _availability_query(scope["query_string"])
        return await self.answer_availability(account, skus, location)

    async def answer_availability(
        self, account: Account, skus: list[str], location: str | None
    ) -> bytes:
        """The availability answer's JSON for `skus` at `location` (every location when None),
        scoped to the account's locations; refusals raised as GatewayErrors."""
        if not skus:
            raise BadRequest("give at least one sku=")
        if len(skus) > self.limits.max_skus:
            raise BadRequest(f"at most {self.limits.max_skus} SKUs a query, not {len(skus)}")
        if location is not None:
            account.may_read(location)
        found = await self.source.availability_json(skus, location)
        # The account reads its own locations only, whatever the source holds.
        locations = account.locations
        rows = [r for r in found if r[1] in locations]
        seen = {r[0] for r in rows}
        # The rows go out as stored (each an Availability's JSON, joined into the array);
        # `_AvailabilityWire` is `AvailabilityAnswer` byte for byte.
        answer = _AvailabilityWire(
            as_of=min([r[2] for r in rows]) if rows else None,
            items=msgspec.Raw(b"[" + b",".join([r[3] for r in rows]) + b"]"),
            unknown=tuple(s for s in skus if s not in seen),
        )
        return _encoder.encode(answer)

    async def submit(self, request: Request) -> Response:
        account = self._account(request)
        key = _idempotency_key(request)
        body = await _json_body(request, self.limits.max_body_bytes)
        try:
            order = _ORDER.decode(body)
        except msgspec.ValidationError as exc:
            raise InvalidDocument(str(exc)) from None
        except msgspec.DecodeError:
            raise InvalidDocument("the body is not JSON") from None
        self._check(order, account)
        # Ignored when invalid (Trace Context: restart the trace), never a 4xx.
        traceparent = parse_traceparent(request.headers.get("traceparent"))
        submitted = await self.desk.submit(account.id, key, body, order, traceparent=traceparent)
        headers = {"location": f"{API_PREFIX}/orders/{submitted.order_id}"}
        if submitted.replayed:
            headers["idempotent-replayed"] = "true"
        return Response(submitted.body, submitted.status, headers=headers, media_type=_JSON)

    async def order(self, request: Request) -> Response:
        account = self._account(request)
        order_id = str(request.path_params["order_id"])
        answer = await self.desk.status(account.id, order_id)
        if answer is None:
            raise NotFound(f"no order {order_id[:40]!r} for this account")
        return Response(_encoder.encode(answer), 200, media_type=_JSON)

    def _check(self, order: OrderRequest, account: Account) -> None:
        """Raise InvalidDocument naming every line that breaks the account's or the API's rules."""
        errors: list[FieldError] = []
        if order.ship_to not in account.ship_tos:
            errors.append(FieldError("$.ship_to", "not one of the account's ship-to locations"))
        if len(order.lines) > self.limits.max_lines:
            errors.append(FieldError("$.lines", f"more than {self.limits.max_lines} lines"))
        items = self.limits.items
        for i, line in enumerate(order.lines[: self.limits.max_lines]):
            if items and line.sku not in items:
                errors.append(FieldError(f"$.lines[{i}].sku", "not a known item"))
            if line.quantity > self.limits.max_quantity:
                errors.append(
                    FieldError(f"$.lines[{i}].quantity", f"above {self.limits.max_quantity}")
                )
        if errors:
            raise InvalidDocument(f"{len(errors)} problem(s) in the order", errors=errors)


def _idempotency_key(request: Request) -> str:
    key = request.headers.get("idempotency-key", "").strip()
    if not key:
        raise BadRequest("the Idempotency-Key header is required")
    if len(key) > MAX_IDEMPOTENCY_KEY_CHARS or not key.isprintable() or not key.isascii():
        raise BadRequest(
            f"Idempotency-Key: up to {MAX_IDEMPOTENCY_KEY_CHARS} printable ASCII characters"
        )
    return key


async def _json_body(request: Request, limit: int) -> bytes:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != _JSON:
        raise UnsupportedMediaType("send the order as application/json")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body exceeds the limit of {limit} bytes")
    return await read_body(request.receive, limit)


class _Problems:
    """Map every error the router or a handler raises to problem+json, in one place.

    `GET /api/v1/availability`, the API's hot read, is answered by `availability(scope)`
    before the router (bench availability: the router, `Request`, query parsing and
    `Response` were most of its cost beside serving alone); the router keeps its route for
    the 405 of other methods."""

    def __init__(self, app: ASGIApp, *, availability: Callable[[Scope], Awaitable[bytes]]) -> None:
        self.app = app
        self.availability = availability

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == _AVAILABILITY and scope["method"] == "GET":
            try:
                body = await self.availability(scope)
            except Exception as exc:
                await _send_problem(exc, scope, send)
            else:
                await send_response(send, 200, _JSON_HEADERS, body)
            return
        # With "app" in the scope, starlette's router raises its 404 and 405 instead of
        # answering them in plain text, so they are mapped here like every other error.
        scope["app"] = self
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except ClientDisconnected:
            return
        except Exception as exc:
            if started:
                raise
            await _send_problem(exc, scope, send)


async def _send_problem(exc: Exception, scope: Scope, send: Send) -> None:
    status, headers, body = problem_response(_as_gateway_error(exc), instance=scope.get("path"))
    await send_response(send, status, headers, body)


def _as_gateway_error(exc: Exception) -> GatewayError:
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, HTTPException):
        if exc.status_code == 405:
            allow = tuple((exc.headers or {}).get("Allow", "").replace(" ", "").split(","))
            return MethodNotAllowed("method not allowed here", allow=allow)
        if exc.status_code == 404:
            return RouteNotFound("no such route")
    logger.exception("customer API: an unexpected error", exc_info=exc)
    return GatewayError("the gateway failed on this request")
