"""The purchase order as a FastAPI peer would model it: pydantic v2, constraints in the fields.

The same shape and rules as `canonical.orders.PurchaseOrder`, written the way a FastAPI service
would, so the peers pay for the validation a real service does.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["PurchaseOrder"]

Code = Annotated[str, Field(min_length=1, max_length=35, pattern=r"^\S(.*\S)?$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Address(_Strict):
    line1: Annotated[str, Field(min_length=1, max_length=55)]
    line2: Annotated[str, Field(max_length=55)] | None = None
    city: Annotated[str, Field(min_length=1, max_length=30)]
    region: Annotated[str, Field(max_length=3)] | None = None
    postal_code: Annotated[str, Field(min_length=1, max_length=15)]
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]


class PartyRef(_Strict):
    party_id: Code
    name: Annotated[str, Field(max_length=60)] | None = None
    gln: Annotated[str, Field(pattern=r"^[0-9]{13}$")] | None = None
    address: Address | None = None


class Quantity(_Strict):
    value: Annotated[Decimal, Field(ge=0, max_digits=21, decimal_places=6)]
    uom: Annotated[str, Field(pattern=r"^[A-Z0-9]{1,6}$")]


class Money(_Strict):
    amount: Annotated[Decimal, Field(max_digits=21, decimal_places=6)]
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


class PurchaseOrderLine(_Strict):
    line_number: Annotated[int, Field(ge=1, le=999_999)]
    sku: Annotated[
        str, Field(min_length=1, max_length=48, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
    ]
    gtin: Annotated[str, Field(pattern=r"^([0-9]{8}|[0-9]{12,14})$")] | None = None
    description: Annotated[str, Field(max_length=500)] | None = None
    quantity: Quantity
    unit_price: Money
    requested_date: dt.date


class PurchaseOrder(_Strict):
    document_type: Literal["purchase_order"] = "purchase_order"
    po_number: Code
    buyer: PartyRef
    supplier: PartyRef
    ship_to: PartyRef | None = None
    order_date: dt.date
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    lines: Annotated[list[PurchaseOrderLine], Field(min_length=1, max_length=10_000)]
