"""Availability: what a customer may order of one SKU at one location, as last known.

The inventory position actors keep it (a read model written in the same transaction as each
position change); the customer API serves it and never asks the ERP. Channel availability is
never real time, so every answer carries `as_of`.
"""

from __future__ import annotations

from decimal import Decimal

from msgspec import Struct

from canonical.common import LocationCode, Sku, Timestamp, UomCode

__all__ = ["Availability"]


class Availability(Struct, frozen=True, kw_only=True):
    """One SKU at one location: the buckets and what is available, as of a time."""

    sku: Sku
    location_id: LocationCode
    uom: UomCode
    on_hand: Decimal
    allocated: Decimal
    in_transit: Decimal
    quarantined: Decimal
    available: Decimal  # on_hand - allocated - quarantined; derived, never an input
    as_of: Timestamp  # the newest input the position has applied
    needs_snapshot: bool = False  # a gap in the deltas was not filled in time
