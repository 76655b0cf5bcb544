"""The customer API's ASGI app: one starlette router, one problem+json mapping for every error.

Routes (all under `/api/v1`, every one behind the account's API key), in a `ProblemRouter`
(protocols/http/router.py):
- `GET /availability?sku=..&sku=..&location=..`: the availability read model, as of when.
- `POST /orders` with `Idempotency-Key`: the order committed before the 202 answer.
- `GET /orders/{order_id}`: the order's status as last learned, `stale` when it is old.

Errors of any kind leave as RFC 9457 problem+json, mapped by the router for every listener.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

import msgspec
from msgspec import Struct
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from canonical.errors import (
    FieldError,
    InvalidDocument,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from canonical.tracecontext import parse_traceparent
from canonical.tracing import Tracer, answered_in

from ..asgi import Receive, Scope, Send, read_body, send_response
from ..problem import BadRequest
from ..router import ProblemRouter, send_problem
from ..routing import NotFound
from .accounts import Account, Accounts
from .models import OrderRequest
from .ports import AvailabilitySource, OrderDesk, Submitted

__all__ = ["API_PREFIX", "MAX_IDEMPOTENCY_KEY_CHARS", "ApiLimits", "customer_api"]

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
    accounts: Accounts,
    availability: AvailabilitySource,
    desk: OrderDesk,
    limits: ApiLimits,
    *,
    tracer: Tracer | None = None,
) -> ProblemRouter:
    """Return the customer API as an ASGI app, errors mapped to problem+json; with `tracer`,
    each order submitted is an `order ingress` span."""
    handlers = _Handlers(accounts, availability, desk, limits, tracer)
    routes: list[BaseRoute] = [
        Route(_AVAILABILITY, handlers.availability, methods=["GET"]),
        Route(f"{API_PREFIX}/orders", handlers.submit, methods=["POST"]),
        Route(f"{API_PREFIX}/orders/{{order_id}}", handlers.order, methods=["GET"]),
    ]
    return _CustomerApi(routes, availability=handlers.availability_of)


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
        tracer: Tracer | None,
    ) -> None:
        self.accounts = accounts
        self.source = availability
        self.desk = desk
        self.limits = limits
        self.tracer = tracer

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
        submitted = await self._submit(account, key, body, order, traceparent)
        headers = {"location": f"{API_PREFIX}/orders/{submitted.order_id}"}
        if submitted.replayed:
            headers["idempotent-replayed"] = "true"
        return Response(submitted.body, submitted.status, headers=headers, media_type=_JSON)

    async def _submit(
        self,
        account: Account,
        key: str,
        body: bytes,
        order: OrderRequest,
        traceparent: str | None,
    ) -> Submitted:
        """Submit to the desk; with a tracer, inside the `order ingress` span, which the
        order's envelope continues (as a webhook's: a key or body refused before records
        nothing)."""
        if self.tracer is None:
            return await self.desk.submit(account.id, key, body, order, traceparent=traceparent)
        span = self.tracer.start(
            "order ingress",
            traceparent,
            kind="server",
            attributes={"http.request.method": "POST", "gateway.customer": account.id},
        )
        return await answered_in(
            span, self.desk.submit(account.id, key, body, order, traceparent=span.traceparent)
        )

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


class _CustomerApi(ProblemRouter):
    """The router, with `GET /api/v1/availability`, the API's hot read, answered by
    `availability(scope)` before it (bench availability: the router, `Request`, query parsing
    and `Response` were most of its cost beside serving alone); the router keeps its route for
    the 405 of other methods."""

    def __init__(
        self, routes: list[BaseRoute], *, availability: Callable[[Scope], Awaitable[bytes]]
    ) -> None:
        super().__init__(routes)
        self.availability = availability

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == _AVAILABILITY and scope["method"] == "GET":
            try:
                body = await self.availability(scope)
            except Exception as exc:
                await send_problem(exc, "GET", _AVAILABILITY, send)
            else:
                await send_response(send, 200, _JSON_HEADERS, body)
            return
        await super().__call__(scope, receive, send)
