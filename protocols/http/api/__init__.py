"""The customer API (`/api/v1`): availability, orders that survive ERP downtime, order status.

Transport only: accounts and their keys (accounts.py), the ASGI app on a starlette router
(app.py), the bodies (models.py), the ports the gateway implements (ports.py) and the
operations for the contracts (operations.py). Served on its own listener (`[customer_api]`).
"""

from .accounts import Account, Accounts, key_digest
from .app import API_PREFIX, ApiLimits, customer_api
from .models import (
    AvailabilityAnswer,
    MilestoneAnswer,
    OrderAccepted,
    OrderLineRequest,
    OrderRequest,
    OrderStatusAnswer,
)
from .operations import OPERATIONS
from .ports import AvailabilitySource, OrderDesk, Submitted

__all__ = [
    "API_PREFIX",
    "OPERATIONS",
    "Account",
    "Accounts",
    "ApiLimits",
    "AvailabilityAnswer",
    "AvailabilitySource",
    "MilestoneAnswer",
    "OrderAccepted",
    "OrderDesk",
    "OrderLineRequest",
    "OrderRequest",
    "OrderStatusAnswer",
    "Submitted",
    "customer_api",
    "key_digest",
]
