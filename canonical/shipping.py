"""Shipping documents: advance ship notice (856), goods receipt (861/944), milestones (214)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from msgspec import Meta, Struct

from canonical.common import (
    MAX_LINES,
    CanonicalDocument,
    DocumentNumber,
    Gtin,
    InvalidField,
    LineNumber,
    LocationCode,
    PartyRef,
    Quantity,
    Scac,
    Sku,
    Sscc,
    Text,
    Timestamp,
    UomCode,
    check_decimal,
    check_gs1,
    check_unique,
)

__all__ = [
    "AdvanceShipNotice",
    "GoodsReceipt",
    "GoodsReceiptLine",
    "Milestone",
    "Pack",
    "PackKind",
    "PackedItem",
    "ShipmentMilestone",
    "ShippedOrder",
]

PackKind = Literal["pallet", "carton"]
Milestone = Literal[
    "picked_up",
    "departed",
    "in_transit",
    "arrived",
    "out_for_delivery",
    "delivered",
    "delayed",
    "delivery_failed",
]
Lot = Annotated[str, Meta(min_length=1, max_length=30)]
TrackingNumber = Annotated[str, Meta(min_length=1, max_length=35)]


class PackedItem(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An item in a pack (HL item level), tied to the order line it fills."""

    po_line_number: LineNumber
    sku: Sku
    gtin: Gtin | None = None
    quantity: Quantity
    lot_number: Lot | None = None
    expiry_date: dt.date | None = None

    def __post_init__(self) -> None:
        check_gs1("gtin", self.gtin)


class Pack(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A labelled handling unit (HL tare/pack level): a pallet or a carton."""

    sscc: Sscc
    kind: PackKind
    items: Annotated[tuple[PackedItem, ...], Meta(min_length=1, max_length=MAX_LINES)]

    def __post_init__(self) -> None:
        check_gs1("sscc", self.sscc)


class ShippedOrder(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The packs of one purchase order in this shipment (HL order level)."""

    po_number: DocumentNumber
    packs: Annotated[tuple[Pack, ...], Meta(min_length=1, max_length=MAX_LINES)]


class AdvanceShipNotice(CanonicalDocument, tag="advance_ship_notice", frozen=True, kw_only=True):
    """A supplier's notice of what was shipped: shipment -> orders -> packs -> items."""

    asn_number: DocumentNumber
    ship_date: dt.date
    expected_delivery_date: dt.date | None = None
    supplier: PartyRef
    ship_to: PartyRef
    carrier_scac: Scac | None = None
    bill_of_lading: TrackingNumber | None = None
    orders: Annotated[tuple[ShippedOrder, ...], Meta(min_length=1, max_length=MAX_LINES)]

    def __post_init__(self) -> None:
        check_unique("orders", "po_number", (order.po_number for order in self.orders))
        seen: set[str] = set()
        for o, order in enumerate(self.orders):
            for p, pack in enumerate(order.packs):
                if pack.sscc in seen:
                    raise InvalidField(f"orders[{o}].packs[{p}].sscc", "SSCC used twice")
                seen.add(pack.sscc)


class GoodsReceiptLine(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What the warehouse counted for one order line, against what was expected.

    `received_quantity` counts every unit that arrived, damaged ones included; short and over
    are the gap to `expected_quantity`, stated explicitly as the receipt (861/944) carries them.
    """

    line_number: LineNumber
    po_line_number: LineNumber | None = None
    sku: Sku
    uom: UomCode
    expected_quantity: Decimal
    received_quantity: Decimal
    short_quantity: Decimal = Decimal(0)
    over_quantity: Decimal = Decimal(0)
    damaged_quantity: Decimal = Decimal(0)
    lot_number: Lot | None = None

    def __post_init__(self) -> None:
        for name in (
            "expected_quantity",
            "received_quantity",
            "short_quantity",
            "over_quantity",
            "damaged_quantity",
        ):
            check_decimal(name, getattr(self, name))
        gap = self.received_quantity - self.expected_quantity
        if self.short_quantity != max(-gap, Decimal(0)):
            raise InvalidField("short_quantity", "must be expected minus received when short")
        if self.over_quantity != max(gap, Decimal(0)):
            raise InvalidField("over_quantity", "must be received minus expected when over")
        if self.damaged_quantity > self.received_quantity:
            raise InvalidField("damaged_quantity", "cannot exceed received_quantity")


class GoodsReceipt(CanonicalDocument, tag="goods_receipt", frozen=True, kw_only=True):
    """A warehouse's receipt of goods against a purchase order, with discrepancies per line."""

    receipt_number: DocumentNumber
    received_at: Timestamp
    location_id: LocationCode
    po_number: DocumentNumber
    asn_number: DocumentNumber | None = None
    supplier: PartyRef
    lines: Annotated[tuple[GoodsReceiptLine, ...], Meta(min_length=1, max_length=MAX_LINES)]

    def __post_init__(self) -> None:
        check_unique("lines", "line_number", (line.line_number for line in self.lines))


class ShipmentMilestone(CanonicalDocument, tag="shipment_milestone", frozen=True, kw_only=True):
    """A carrier's status event for a shipment (picked up, delivered, delayed...)."""

    shipment_id: DocumentNumber
    milestone: Milestone
    occurred_at: Timestamp
    carrier_scac: Scac | None = None
    tracking_number: TrackingNumber | None = None
    location: Text | None = None
    estimated_delivery_at: Timestamp | None = None
    po_numbers: Annotated[tuple[DocumentNumber, ...], Meta(max_length=MAX_LINES)] = ()
    reason: Text | None = None
