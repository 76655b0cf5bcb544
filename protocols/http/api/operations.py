"""The customer API's operations as data (`OPERATIONS`), for the generated OpenAPI document."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from ..operations import Operation, Parameter, Response
from .app import API_PREFIX, MAX_IDEMPOTENCY_KEY_CHARS
from .models import AvailabilityAnswer, OrderAccepted, OrderRequest, OrderStatusAnswer

__all__ = ["OPERATIONS"]

_PROBLEM = "application/problem+json"
_SECURITY = ("api_key",)
_REFUSED = (
    Response(status=401, description="No API key, or one of no account", media_type=_PROBLEM),
    Response(
        status=429,
        description="The account is over its rate limit",
        media_type=_PROBLEM,
        headers=("Retry-After",),
    ),
)

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        method="GET",
        path=f"{API_PREFIX}/availability",
        operation_id="getAvailability",
        summary="Availability of up to 100 SKUs, from the read model, with as_of",
        tags=("customer",),
        parameters=(
            Parameter(
                name="sku",
                where="query",
                type=list[str],
                required=True,
                description="Repeat for each SKU (up to 100)",
            ),
            Parameter(
                name="location",
                where="query",
                description="One of the account's locations; all of them when left out",
            ),
        ),
        responses=(
            Response(
                status=200, description="Rows known, each with as_of", body=AvailabilityAnswer
            ),
            Response(status=400, description="No SKU, or too many", media_type=_PROBLEM),
            Response(
                status=403, description="Not one of the account's locations", media_type=_PROBLEM
            ),
            *_REFUSED,
        ),
        security=_SECURITY,
    ),
    Operation(
        method="POST",
        path=f"{API_PREFIX}/orders",
        operation_id="submitOrder",
        summary="Submit an order: committed before the answer, sent to the ERP when it can take it",
        tags=("customer",),
        parameters=(
            Parameter(
                name="Idempotency-Key",
                where="header",
                type=Annotated[str, Meta(min_length=1, max_length=MAX_IDEMPOTENCY_KEY_CHARS)],
                required=True,
                description="A retry with the same key and body gets the first answer",
            ),
            Parameter(
                name="traceparent",
                where="header",
                description="W3C Trace Context; the order's message to the ERP continues it. "
                "An invalid value is ignored",
            ),
        ),
        request_body=OrderRequest,
        responses=(
            Response(
                status=202,
                description="Accepted (state buffered until the ERP confirms)",
                body=OrderAccepted,
                headers=("Location", "Idempotent-Replayed"),
            ),
            Response(status=400, description="No Idempotency-Key", media_type=_PROBLEM),
            Response(
                status=409,
                description="The first request with this key is in flight",
                media_type=_PROBLEM,
            ),
            Response(status=413, description="Body too large", media_type=_PROBLEM),
            Response(status=415, description="Not application/json", media_type=_PROBLEM),
            Response(
                status=422,
                description="Invalid order, or the key reused with another body",
                media_type=_PROBLEM,
            ),
            Response(
                status=503,
                description="The store could not commit; retry with the same key",
                media_type=_PROBLEM,
                headers=("Retry-After",),
            ),
            *_REFUSED,
        ),
        security=_SECURITY,
    ),
    Operation(
        method="GET",
        path=f"{API_PREFIX}/orders/{{order_id}}",
        operation_id="getOrder",
        summary="An order's status as last learned, stale: true when its source went quiet",
        tags=("customer",),
        parameters=(Parameter(name="order_id", where="path", required=True),),
        responses=(
            Response(
                status=200, description="The status and its milestones", body=OrderStatusAnswer
            ),
            Response(status=404, description="No such order for this account", media_type=_PROBLEM),
            *_REFUSED,
        ),
        security=_SECURITY,
    ),
)
