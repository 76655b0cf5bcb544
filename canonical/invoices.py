"""The supplier's invoice (810), with totals that must add up."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from typing import Annotated

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

__all__ = ["Invoice", "InvoiceLine"]

# Bounded decimals (common.MAX_*) multiplied and summed over MAX_LINES stay well inside this
# precision, so the checks below are exact and cannot raise InvalidOperation.
_EXACT = Context(prec=60, rounding=ROUND_HALF_UP)


class InvoiceLine(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One billed item (IT1): quantity x unit price = amount, rounded to the amount's places."""

    line_number: LineNumber
    po_line_number: LineNumber | None = None
    sku: Sku
    gtin: Gtin | None = None
    description: Text | None = None
    quantity: Quantity
    unit_price: Money
    amount: Money

    def __post_init__(self) -> None:
        check_gs1("gtin", self.gtin)
        if self.unit_price.currency != self.amount.currency:
            raise InvalidField("unit_price.currency", "differs from the amount's currency")
        with localcontext(_EXACT):
            extended = self.quantity.value * self.unit_price.amount
            # Money.__post_init__ has made the amount finite, so its exponent is an int.
            places = Decimal(1).scaleb(min(int(self.amount.amount.as_tuple().exponent), 0))
            if extended.quantize(places) != self.amount.amount:
                raise InvalidField("amount.amount", f"must be quantity x unit price ({extended})")


class Invoice(CanonicalDocument, tag="invoice", frozen=True, kw_only=True):
    """A supplier's bill against a purchase order: lines, then subtotal + tax + charges = total."""

    invoice_number: DocumentNumber
    invoice_date: dt.date
    due_date: dt.date | None = None
    po_number: DocumentNumber
    supplier: PartyRef
    bill_to: PartyRef
    currency: CurrencyCode
    lines: Annotated[tuple[InvoiceLine, ...], Meta(min_length=1, max_length=MAX_LINES)]
    subtotal: Money
    tax: Money | None = None
    charges: Money | None = None
    total: Money

    def __post_init__(self) -> None:
        check_unique("lines", "line_number", (line.line_number for line in self.lines))
        for i, line in enumerate(self.lines):
            if line.amount.currency != self.currency:
                raise InvalidField(f"lines[{i}].amount.currency", f"must be {self.currency}")
        for name in ("subtotal", "tax", "charges", "total"):
            money: Money | None = getattr(self, name)
            if money is not None and money.currency != self.currency:
                raise InvalidField(f"{name}.currency", f"must be {self.currency}")
        with localcontext(_EXACT):
            lines_sum = sum((line.amount.amount for line in self.lines), Decimal(0))
            if self.subtotal.amount != lines_sum:
                raise InvalidField("subtotal.amount", f"must be the sum of the lines ({lines_sum})")
            total = self.subtotal.amount
            for extra in (self.tax, self.charges):
                total += extra.amount if extra is not None else 0
            if self.total.amount != total:
                raise InvalidField("total.amount", f"must be subtotal + tax + charges ({total})")
