"""What the customer API needs from the gateway: availability rows, and a desk for orders.

Protocols only: the gateway implements them (gateway/customer_api.py) over the store's read
models and its intake; nothing here calls the ERP, so no answer waits on it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Protocol

from msgspec import Struct

from .models import OrderRequest, OrderStatusAnswer

__all__ = ["AvailabilityRow", "AvailabilitySource", "OrderDesk", "Submitted"]


# One read model row as stored: (sku, location_id, as_of, body), `body` the JSON of a
# `canonical.availability.Availability` (sent as is), `as_of` its own.
AvailabilityRow = tuple[str, str, dt.datetime, bytes]


class AvailabilitySource(Protocol):
    """The availability read model (the inventory positions keep it)."""

    async def availability_json(
        self, skus: Sequence[str], location_id: str | None
    ) -> Sequence[AvailabilityRow]:
        """Rows for these SKUs at `location_id` (every location when None), each its
        `Availability` encoded as JSON; unknown SKUs are left out. Up to 100 SKUs a call."""
        ...


class Submitted(Struct, frozen=True, kw_only=True):
    """The answer to a submission: the first one, byte for byte, when `replayed`."""

    status: int
    body: bytes
    replayed: bool
    order_id: str


class OrderDesk(Protocol):
    """Commits orders before they are answered, and reads their status."""

    async def submit(
        self,
        account_id: str,
        idempotency_key: str,
        body: bytes,
        order: OrderRequest,
        *,
        traceparent: str | None = None,
    ) -> Submitted:
        """Commit the order (outbox row for the ERP) and answer 202; a retry with the same key
        and body gets the first answer. Raises IdempotencyKeyReused (422), IdempotencyConflict
        (409), InvalidDocument (422) or StoreUnavailable (503). `traceparent` (W3C, valid or
        None) is the trace the order's message continues."""
        ...

    async def status(self, account_id: str, order_id: str) -> OrderStatusAnswer | None:
        """The order's status as last learned; None when the account has no such order."""
        ...
