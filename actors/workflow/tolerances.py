"""A supplier's tolerances and deadlines: what the thread's rules let pass, and when it chases."""

from __future__ import annotations

from decimal import Decimal

import msgspec

__all__ = ["Tolerances"]


class Tolerances(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Per-supplier limits of the purchase-order rules, with the defaults a strict buyer uses.

    Field names match the gateway's `[workflow.rules]` settings, so the composition root passes
    them straight through. A quantity is within tolerance when it differs from the expected one
    by at most the larger of `quantity_percent` of it and `quantity_units`; both 0 means exact.
    """

    quantity_percent: Decimal = Decimal(0)
    quantity_units: Decimal = Decimal(0)
    # A promised date may be this many days after the requested date before it is an exception.
    promised_date_slack_days: int = 0
    # A confirmed or invoiced unit price may differ from the order's by this much.
    price_percent: Decimal = Decimal(0)
    # The supplier acknowledges within this many hours of the order's delivery to it.
    ack_sla_hours: float = 24.0
    # The ASN is due this many days before the earliest requested date.
    asn_lead_days: int = 1
    # The receipt is due this many days after the expected delivery (or the requested) date.
    receipt_overdue_days: int = 2
    # An input for an order not seen yet waits this long for it before it is an exception.
    park_hours: float = 24.0

    def __post_init__(self) -> None:
        for name in ("quantity_percent", "quantity_units", "price_percent"):
            value: Decimal = getattr(self, name)
            if not value.is_finite() or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0")
        for name in ("ack_sla_hours", "park_hours"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        for name in ("promised_date_slack_days", "asn_lead_days", "receipt_overdue_days"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")

    def quantity_ok(self, actual: Decimal, expected: Decimal) -> bool:
        """Whether `actual` is within the quantity tolerance of `expected`."""
        allowed = max(expected * self.quantity_percent / 100, self.quantity_units)
        return abs(actual - expected) <= allowed

    def quantity_over(self, actual: Decimal, limit: Decimal) -> bool:
        """Whether `actual` exceeds `limit` by more than the quantity tolerance allows."""
        allowed = max(limit * self.quantity_percent / 100, self.quantity_units)
        return actual - limit > allowed

    def price_ok(self, actual: Decimal, expected: Decimal) -> bool:
        """Whether a unit price is within the price tolerance of the ordered one."""
        return abs(actual - expected) <= expected * self.price_percent / 100
