"""Purchase order documents: the order (850), its changes (860) and the supplier's ack (855)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from msgspec import Meta, Struct

from canonical.common import (
    MAX_LINES,
    CanonicalDocument,
    CurrencyCode,
    DocumentNumber,
    Gtin,
    InvalidField,
    LineNumber,
    Money,
    PartyRef,
    Quantity,
    Sku,
    Text,
    check_gs1,
    check_unique,
)

__all__ = [
    "AckStatus",
    "ChangeKind",
    "PurchaseOrder",
    "PurchaseOrderAck",
    "PurchaseOrderAckLine",
    "PurchaseOrderChange",
    "PurchaseOrderChangeLine",
    "PurchaseOrderLine",
]

AckStatus = Literal["accept", "change", "reject"]
ChangeKind = Literal["add", "change", "cancel"]


def _check_currency(field: str, currency: str, prices: list[Money | None]) -> None:
    for i, price in enumerate(prices):
        if price is not None and price.currency != currency:
            raise InvalidField(
                f"{field}[{i}].unit_price.currency",
                f"is {price.currency}, the order's currency is {currency}",
            )


class PurchaseOrderLine(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One ordered item (PO1)."""

    line_number: LineNumber
    sku: Sku
    gtin: Gtin | None = None
    description: Text | None = None
    quantity: Quantity
    unit_price: Money
    requested_date: dt.date

    def __post_init__(self) -> None:
        check_gs1("gtin", self.gtin)


class PurchaseOrder(CanonicalDocument, tag="purchase_order", frozen=True, kw_only=True):
    """A buyer's order to a supplier, released from the ERP."""

    po_number: DocumentNumber
    buyer: PartyRef
    supplier: PartyRef
    ship_to: PartyRef | None = None
    order_date: dt.date
    currency: CurrencyCode
    lines: Annotated[tuple[PurchaseOrderLine, ...], Meta(min_length=1, max_length=MAX_LINES)]

    def __post_init__(self) -> None:
        check_unique("lines", "line_number", (line.line_number for line in self.lines))
        _check_currency("lines", self.currency, [line.unit_price for line in self.lines])


class PurchaseOrderChangeLine(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One change to an order line (POC): add a line, change it, or cancel it."""

    line_number: LineNumber
    change: ChangeKind
    sku: Sku
    quantity: Quantity | None = None
    unit_price: Money | None = None
    requested_date: dt.date | None = None

    def __post_init__(self) -> None:
        if self.change == "add":
            for name in ("quantity", "unit_price", "requested_date"):
                if getattr(self, name) is None:
                    raise InvalidField(name, "is required when adding a line")
        elif self.change == "change" and (
            self.quantity is None and self.unit_price is None and self.requested_date is None
        ):
            raise InvalidField("change", "a change must set quantity, unit_price or requested_date")


class PurchaseOrderChange(
    CanonicalDocument, tag="purchase_order_change", frozen=True, kw_only=True
):
    """A buyer's change to an order already sent; `change_number` orders the changes."""

    po_number: DocumentNumber
    change_number: Annotated[int, Meta(ge=1)]
    change_date: dt.date
    buyer: PartyRef
    supplier: PartyRef
    currency: CurrencyCode
    reason: Text | None = None
    lines: Annotated[tuple[PurchaseOrderChangeLine, ...], Meta(min_length=1, max_length=MAX_LINES)]

    def __post_init__(self) -> None:
        check_unique("lines", "line_number", (line.line_number for line in self.lines))
        _check_currency("lines", self.currency, [line.unit_price for line in self.lines])


class PurchaseOrderAckLine(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The supplier's answer for one line (ACK): accepted, changed, or rejected."""

    line_number: LineNumber
    sku: Sku
    status: AckStatus
    promised_quantity: Quantity | None = None
    promised_date: dt.date | None = None
    reason: Text | None = None
    # The price the supplier confirms, when it confirms one (added with the purchase-order
    # thread's price rule; optional, so older acks stay valid).
    unit_price: Money | None = None

    def __post_init__(self) -> None:
        if self.status == "reject":
            if self.promised_quantity is not None and self.promised_quantity.value:
                raise InvalidField("promised_quantity", "a rejected line promises nothing")
            return
        for name in ("promised_quantity", "promised_date"):
            if getattr(self, name) is None:
                raise InvalidField(name, f"is required when the line status is {self.status}")


class PurchaseOrderAck(CanonicalDocument, tag="purchase_order_ack", frozen=True, kw_only=True):
    """A supplier's acknowledgement of an order, line by line."""

    po_number: DocumentNumber
    ack_number: DocumentNumber | None = None
    ack_date: dt.date
    supplier: PartyRef
    buyer: PartyRef
    lines: Annotated[tuple[PurchaseOrderAckLine, ...], Meta(min_length=1, max_length=MAX_LINES)]

    def __post_init__(self) -> None:
        check_unique("lines", "line_number", (line.line_number for line in self.lines))
