"""Customer orders: the sales order a customer submits, and the status the ERP reports back.

A `SalesOrder` is what the customer API commits to the outbox and the relay publishes to the
ERP (routing key `sales_order.{customer}`, the customer's Idempotency-Key carried on as the
envelope's `idempotency_key`). An `OrderStatus` is what the ERP (or a logistics source)
publishes about it; the gateway keeps the latest as the order's status read model.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Annotated, Literal

from msgspec import Meta, Struct

from canonical.common import (
    MAX_LINES,
    CanonicalDocument,
    DocumentNumber,
    LineNumber,
    LocationCode,
    PartnerId,
    Quantity,
    Scac,
    Sku,
    Text,
    Timestamp,
    check_unique,
)

__all__ = [
    "ORDER_STATES",
    "OrderState",
    "OrderStatus",
    "SalesOrder",
    "SalesOrderLine",
    "sales_order_id",
]

# The states an order's status resource shows, in the order they normally come.
OrderState = Literal[
    "received", "buffered", "confirmed", "allocated", "shipped", "delivered", "cancelled"
]
ORDER_STATES: tuple[OrderState, ...] = (
    "received",
    "buffered",
    "confirmed",
    "allocated",
    "shipped",
    "delivered",
    "cancelled",
)
OrderId = Annotated[str, Meta(pattern=r"^SO-[0-9a-f]{24}$", description="Gateway order id")]


def sales_order_id(customer_id: str, idempotency_key: str) -> str:
    """The order id for a customer's submission: the same key always names the same order.

    Derived, not drawn: a retry (or a status row written after a crash) finds the same id.
    """
    digest = hashlib.sha256(f"{customer_id}\0{idempotency_key}".encode()).hexdigest()
    return f"SO-{digest[:24]}"


class SalesOrderLine(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One ordered item."""

    line_number: LineNumber
    sku: Sku
    quantity: Quantity


class SalesOrder(CanonicalDocument, tag="sales_order", frozen=True, kw_only=True):
    """A customer's order, as accepted by the gateway for the ERP."""

    order_id: OrderId
    customer_id: PartnerId
    customer_po_number: DocumentNumber | None = None
    ship_to: LocationCode
    lines: Annotated[tuple[SalesOrderLine, ...], Meta(min_length=1, max_length=MAX_LINES)]
    requested_date: dt.date | None = None
    note: Text | None = None
    submitted_at: Timestamp

    def __post_init__(self) -> None:
        check_unique("lines", "line_number", (line.line_number for line in self.lines))


class OrderStatus(CanonicalDocument, tag="order_status", frozen=True, kw_only=True):
    """What the ERP or a carrier last said about a sales order: its state and milestone."""

    order_id: OrderId
    status: OrderState
    changed_at: Timestamp
    milestone: Text | None = None  # a carrier's words: "in transit, Harrisburg, PA"
    carrier_scac: Scac | None = None
    tracking_number: DocumentNumber | None = None
    erp_order_number: DocumentNumber | None = None
