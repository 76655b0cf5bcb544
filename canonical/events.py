"""Events the gateway's actors emit: the purchase-order thread's status, inbound shipment,
receipt discrepancy and match; the inventory positions' availability changes and drift.

Each is a canonical document like the partners' own, published on the events exchange as
`{document}.{partner}` with the thread's correlation id and the input that caused it as
`causation_id`. Exceptions are `ExceptionNotice`s (canonical/notices.py).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from msgspec import Meta, Struct

from canonical.common import (
    MAX_LINES,
    CanonicalDocument,
    DocumentNumber,
    InvalidField,
    LineNumber,
    LocationCode,
    PartyRef,
    Quantity,
    Scac,
    Sku,
    Text,
    Timestamp,
    UomCode,
    check_decimal,
    check_unique,
)
from canonical.notices import DocumentRef

__all__ = [
    "AvailabilityChanged",
    "HoldReason",
    "InboundShipment",
    "InboundShipmentLine",
    "InventoryDrift",
    "InvoiceMatch",
    "MatchIssue",
    "MatchResult",
    "PurchaseOrderStatus",
    "ReceiptDiscrepancy",
    "ReceiptDiscrepancyLine",
    "ThreadStatus",
]

ThreadStatus = Literal[
    "awaiting_order",  # inputs arrived before the order: parked until it comes
    "released",
    "sent",
    "acknowledged",
    "shipped",
    "received",
    "invoiced",
    "matched",
    "closed",
]
MatchResult = Literal["matched", "held"]
HoldReason = Literal[
    "price",
    "quantity_not_received",
    "duplicate_invoice",
    "unknown_line",
    "currency",
]


class PurchaseOrderStatus(
    CanonicalDocument, tag="purchase_order_status", frozen=True, kw_only=True
):
    """A purchase order's thread moved to another status (for the ERP)."""

    po_number: DocumentNumber
    buyer: PartyRef
    supplier: PartyRef
    status: ThreadStatus
    previous_status: ThreadStatus | None = None
    changed_at: Timestamp
    cause: DocumentRef | None = None


class InboundShipmentLine(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One order line on its way: this shipment's quantity and every shipment's so far."""

    po_line_number: LineNumber
    sku: Sku
    quantity: Quantity
    shipped_to_date: Decimal
    ordered_quantity: Decimal

    def __post_init__(self) -> None:
        check_decimal("shipped_to_date", self.shipped_to_date)
        check_decimal("ordered_quantity", self.ordered_quantity)


class InboundShipment(CanonicalDocument, tag="inbound_shipment", frozen=True, kw_only=True):
    """Goods on their way to a warehouse for one purchase order, from a valid ASN."""

    po_number: DocumentNumber
    asn_number: DocumentNumber
    buyer: PartyRef
    supplier: PartyRef
    ship_to: PartyRef
    ship_date: dt.date
    expected_delivery_date: dt.date | None = None
    carrier_scac: Scac | None = None
    bill_of_lading: Annotated[str, Meta(min_length=1, max_length=35)] | None = None
    lines: Annotated[tuple[InboundShipmentLine, ...], Meta(min_length=1, max_length=MAX_LINES)]

    def __post_init__(self) -> None:
        check_unique("lines", "po_line_number", (line.po_line_number for line in self.lines))


class ReceiptDiscrepancyLine(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One order line received short, over or damaged, against what was shipped."""

    po_line_number: LineNumber
    sku: Sku
    uom: UomCode
    expected_quantity: Decimal
    received_quantity: Decimal
    short_quantity: Decimal = Decimal(0)
    over_quantity: Decimal = Decimal(0)
    damaged_quantity: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        for name in (
            "expected_quantity",
            "received_quantity",
            "short_quantity",
            "over_quantity",
            "damaged_quantity",
        ):
            check_decimal(name, getattr(self, name))


class ReceiptDiscrepancy(CanonicalDocument, tag="receipt_discrepancy", frozen=True, kw_only=True):
    """A goods receipt that differs from what was shipped (to the ERP and supplier management)."""

    po_number: DocumentNumber
    receipt_number: DocumentNumber
    asn_number: DocumentNumber | None = None
    buyer: PartyRef
    supplier: PartyRef
    location_id: LocationCode
    received_at: Timestamp
    lines: Annotated[tuple[ReceiptDiscrepancyLine, ...], Meta(min_length=1, max_length=MAX_LINES)]

    def __post_init__(self) -> None:
        check_unique("lines", "po_line_number", (line.po_line_number for line in self.lines))


class MatchIssue(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Why an invoice is held: the reason, the invoice line it concerns, and what was found."""

    reason: HoldReason
    line_number: LineNumber | None = None
    description: Text


class InvoiceMatch(CanonicalDocument, tag="invoice_match", frozen=True, kw_only=True):
    """The three-way match of an invoice against its order and receipts: matched or held."""

    invoice_number: DocumentNumber
    po_number: DocumentNumber
    buyer: PartyRef
    supplier: PartyRef
    result: MatchResult
    issues: Annotated[tuple[MatchIssue, ...], Meta(max_length=MAX_LINES)] = ()
    matched_at: Timestamp

    def __post_init__(self) -> None:
        if self.result == "held" and not self.issues:
            raise InvalidField("issues", "a held invoice names at least one issue")
        if self.result == "matched" and self.issues:
            raise InvalidField("issues", "a matched invoice has no issues")


class AvailabilityChanged(CanonicalDocument, tag="availability_changed", frozen=True, kw_only=True):
    """One SKU at one location: its buckets and availability after one or more changes.

    Coalesced per position: several changes within the `[inventory]` interval publish one
    event with the position as it stands, so a subscriber sees the latest, not every step.
    """

    sku: Sku
    location_id: LocationCode
    uom: UomCode
    on_hand: Decimal
    allocated: Decimal
    in_transit: Decimal
    quarantined: Decimal
    available: Decimal
    as_of: Timestamp
    needs_snapshot: bool = False


class InventoryDrift(CanonicalDocument, tag="inventory_drift", frozen=True, kw_only=True):
    """A snapshot disagreed with what the deltas had said: the difference, per bucket.

    Each bucket is snapshot minus position before it (positive: the snapshot holds more).
    """

    sku: Sku
    location_id: LocationCode
    uom: UomCode
    snapshot_as_of: Timestamp
    position_as_of: Timestamp | None = None
    on_hand: Decimal = Decimal(0)
    allocated: Decimal = Decimal(0)
    in_transit: Decimal = Decimal(0)
    quarantined: Decimal = Decimal(0)
