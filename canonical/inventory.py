"""Item and stock documents: item master (832/888), inventory position and delta (846/947)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from msgspec import Meta, Struct

from canonical.common import (
    CanonicalDocument,
    DocumentNumber,
    Gtin,
    InvalidField,
    LocationCode,
    Money,
    PartyCode,
    Quantity,
    Sku,
    Text,
    Timestamp,
    UomCode,
    check_decimal,
    check_gs1,
    check_unique,
)

__all__ = [
    "DeltaReason",
    "InventoryDelta",
    "InventoryPosition",
    "ItemMaster",
    "ItemStatus",
    "UomConversion",
]

ItemStatus = Literal["active", "inactive", "discontinued"]
DeltaReason = Literal[
    "receipt",
    "shipment",
    "allocation",
    "deallocation",
    "transfer_in",
    "transfer_out",
    "quarantine",
    "release",
    "adjustment",
    "cycle_count",
]
# Stock buckets both documents carry; `available` is derived from the others and checked.
_HELD = ("on_hand", "allocated", "in_transit", "quarantined")


def _check_available(doc: InventoryPosition | InventoryDelta) -> None:
    # Available to promise: what is on the shelf, less what is promised or held back.
    # In-transit stock is not available until it is received.
    expected = doc.on_hand - doc.allocated - doc.quarantined
    if doc.available != expected:
        raise InvalidField("available", f"must be on_hand - allocated - quarantined ({expected})")


class UomConversion(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How many base units one `uom` holds (CS = 12 EA)."""

    uom: UomCode
    base_units: Decimal

    def __post_init__(self) -> None:
        check_decimal("base_units", self.base_units)
        if not self.base_units:
            raise InvalidField("base_units", "must be > 0")


class ItemMaster(CanonicalDocument, tag="item_master", frozen=True, kw_only=True):
    """An item's master data: identifiers, description, units and cost."""

    sku: Sku
    description: Text
    gtin: Gtin | None = None
    supplier_id: PartyCode | None = None
    supplier_sku: Sku | None = None
    base_uom: UomCode
    conversions: Annotated[tuple[UomConversion, ...], Meta(max_length=20)] = ()
    net_weight: Quantity | None = None
    unit_cost: Money | None = None
    status: ItemStatus = "active"

    def __post_init__(self) -> None:
        check_gs1("gtin", self.gtin)
        check_unique("conversions", "uom", (c.uom for c in self.conversions))
        for i, conversion in enumerate(self.conversions):
            if conversion.uom == self.base_uom:
                raise InvalidField(f"conversions[{i}].uom", "repeats the base unit of measure")


class InventoryPosition(CanonicalDocument, tag="inventory_position", frozen=True, kw_only=True):
    """Stock of one SKU at one location at a point in time, by bucket, in `uom`.

    `available` may go negative when more is allocated than is on hand (a backorder).
    """

    sku: Sku
    location_id: LocationCode
    uom: UomCode
    as_of: Timestamp
    on_hand: Decimal
    allocated: Decimal = Decimal(0)
    in_transit: Decimal = Decimal(0)
    quarantined: Decimal = Decimal(0)
    available: Decimal

    def __post_init__(self) -> None:
        for name in _HELD:
            check_decimal(name, getattr(self, name))
        check_decimal("available", self.available, signed=True)
        _check_available(self)


class InventoryDelta(CanonicalDocument, tag="inventory_delta", frozen=True, kw_only=True):
    """A signed change to one SKU/location's buckets.

    `delta_id` is unique per change so a replay is recognised; `sequence` increases per
    SKU/location so deltas can be applied in order and gaps noticed.
    """

    delta_id: Annotated[str, Meta(min_length=1, max_length=64)]
    sequence: Annotated[int, Meta(ge=1)]
    sku: Sku
    location_id: LocationCode
    uom: UomCode
    occurred_at: Timestamp
    reason: DeltaReason
    reference: DocumentNumber | None = None
    on_hand: Decimal = Decimal(0)
    allocated: Decimal = Decimal(0)
    in_transit: Decimal = Decimal(0)
    quarantined: Decimal = Decimal(0)
    available: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        for name in (*_HELD, "available"):
            check_decimal(name, getattr(self, name), signed=True)
        _check_available(self)
        if not any(getattr(self, name) for name in _HELD):
            raise InvalidField("on_hand", "a delta must change at least one bucket")
