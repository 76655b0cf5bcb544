"""What the customer API reads and answers: request and response bodies as msgspec Structs.

The contracts (OpenAPI, `OPERATIONS` in operations.py) are generated from these, so a field
added here is documented by construction.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated

from msgspec import Meta, Struct

from canonical.availability import Availability
from canonical.common import DocumentNumber, LocationCode, Sku, Text, UomCode
from canonical.sales import OrderState

__all__ = [
    "AvailabilityAnswer",
    "MilestoneAnswer",
    "OrderAccepted",
    "OrderLineRequest",
    "OrderRequest",
    "OrderStatusAnswer",
]


class OrderLineRequest(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One line a customer orders."""

    sku: Sku
    quantity: Decimal  # above zero, finite
    uom: UomCode = "EA"

    def __post_init__(self) -> None:
        if not self.quantity.is_finite() or self.quantity <= 0:
            raise ValueError("quantity must be a number above zero")


class OrderRequest(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The body of `POST /api/v1/orders`."""

    ship_to: LocationCode
    lines: Annotated[tuple[OrderLineRequest, ...], Meta(min_length=1)]
    customer_po_number: DocumentNumber | None = None
    requested_date: dt.date | None = None
    note: Text | None = None


class OrderAccepted(Struct, frozen=True, kw_only=True):
    """The 202 answer: the order's id, its state when accepted, and where its status is read."""

    order_id: str
    status: OrderState
    status_url: str
    message_id: str
    accepted_at: dt.datetime


class MilestoneAnswer(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One state the order went through, when the source says it did."""

    status: str
    at: dt.datetime
    milestone: str | None = None
    carrier_scac: str | None = None
    tracking_number: str | None = None


class OrderStatusAnswer(Struct, frozen=True, kw_only=True):
    """`GET /api/v1/orders/{order_id}`: the status as last learned, never a downstream's error.

    `as_of` is when the source says the status began; `stale` is true when no source has
    said anything about the order for longer than the gateway's `status_stale_after_s`.
    """

    order_id: str
    status: str
    as_of: dt.datetime
    stale: bool
    milestones: tuple[MilestoneAnswer, ...]


class AvailabilityAnswer(Struct, frozen=True, kw_only=True):
    """`GET /api/v1/availability`: one row per SKU and location known, each with its `as_of`.

    `as_of` on the answer is the oldest of the rows' (null when none is known): nothing in
    the answer is older. SKUs asked for and known at no allowed location are in `unknown`.
    """

    as_of: dt.datetime | None
    items: tuple[Availability, ...]
    unknown: tuple[str, ...] = ()
