"""Which partners get a document: standing subscriptions matched on the document's own fields.

A subscription names a partner, a document type and field matches: a dotted path into the
canonical document (`supplier.party_id`) and the value it must equal, compared as text. No match
at all means every document of that type. (The config's `{partner}` placeholder is resolved by
the config before a subscription is built here.)

`aggregate_key` names the business thread a document belongs to, the unit within which
deliveries to one partner keep their order (all messages of one purchase order, one SKU).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from canonical import (
    AdvanceShipNotice,
    Document,
    ExceptionNotice,
    GoodsReceipt,
    InboundShipment,
    InventoryDelta,
    InventoryPosition,
    Invoice,
    InvoiceMatch,
    ItemMaster,
    OrderStatus,
    PurchaseOrder,
    PurchaseOrderAck,
    PurchaseOrderChange,
    PurchaseOrderStatus,
    ReceiptDiscrepancy,
    SalesOrder,
    ShipmentMilestone,
    document_type_of,
)
from canonical.events import AvailabilityChanged, InventoryDrift

__all__ = ["Router", "Subscription", "aggregate_key"]


class Subscription(msgspec.Struct, frozen=True, kw_only=True):
    """One partner's standing order for one document type; `match` as (path, value) pairs."""

    partner_id: str
    document_type: str
    match: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, partner_id: str, document_type: str, match: Mapping[str, str]) -> Subscription:
        """Build a subscription from a mapping of dotted path to the value it must equal."""
        return cls(partner_id=partner_id, document_type=document_type, match=tuple(match.items()))


class Router:
    """Answers which subscribed partners a document goes to, in subscription order."""

    def __init__(self, subscriptions: Iterable[Subscription]) -> None:
        self._by_type: dict[str, list[Subscription]] = {}
        for subscription in subscriptions:
            self._by_type.setdefault(subscription.document_type, []).append(subscription)

    def partners_for(self, document: Document) -> tuple[str, ...]:
        """Return the ids of the partners whose subscription matches `document`, each once."""
        subscriptions = self._by_type.get(document_type_of(document))
        if not subscriptions:
            return ()
        fields: Any = msgspec.to_builtins(document) if _any_match(subscriptions) else None
        partners: dict[str, None] = {}
        for subscription in subscriptions:
            if all(_text(_at(fields, path)) == value for path, value in subscription.match):
                partners[subscription.partner_id] = None
        return tuple(partners)


def aggregate_key(document: Document) -> str:
    """Return the business thread of `document`: `po:<number>`, `item:<sku>`, `stock:<sku>@<loc>`.

    Invoices and goods receipts belong to their order's thread, like its changes and acks, and
    so do the events the thread emits (status, inbound shipment, discrepancy, match).
    """
    match document:
        case (
            PurchaseOrder()
            | PurchaseOrderChange()
            | PurchaseOrderAck()
            | Invoice()
            | GoodsReceipt()
            | PurchaseOrderStatus()
            | InboundShipment()
            | ReceiptDiscrepancy()
            | InvoiceMatch()
        ):
            return f"po:{document.po_number}"
        case ItemMaster():
            return f"item:{document.sku}"
        case InventoryPosition() | InventoryDelta() | AvailabilityChanged() | InventoryDrift():
            return f"stock:{document.sku}@{document.location_id}"
        case AdvanceShipNotice():
            return f"asn:{document.asn_number}"
        case ShipmentMilestone():
            return f"shipment:{document.shipment_id}"
        case ExceptionNotice():
            return f"exception:{document.exception_id}"
        case SalesOrder() | OrderStatus():
            return f"order:{document.order_id}"


def _any_match(subscriptions: list[Subscription]) -> bool:
    return any(s.match for s in subscriptions)


def _at(fields: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(fields, dict):
            return None
        fields = fields.get(part)
    return fields


def _text(value: Any) -> str | None:
    """A scalar as the text a match compares with; None for a missing field or a table."""
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
