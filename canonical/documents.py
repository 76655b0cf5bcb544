"""The set of canonical documents: the tagged union and the registry keyed by document type."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TypeAlias

from canonical.common import CanonicalDocument
from canonical.events import (
    AvailabilityChanged,
    InboundShipment,
    InventoryDrift,
    InvoiceMatch,
    PurchaseOrderStatus,
    ReceiptDiscrepancy,
)
from canonical.inventory import InventoryDelta, InventoryPosition, ItemMaster
from canonical.invoices import Invoice
from canonical.notices import ExceptionNotice
from canonical.orders import PurchaseOrder, PurchaseOrderAck, PurchaseOrderChange
from canonical.sales import OrderStatus, SalesOrder
from canonical.shipping import AdvanceShipNotice, GoodsReceipt, ShipmentMilestone

__all__ = ["DOCUMENT_TYPES", "Document", "document_type_of"]

# One union, told apart by the "document_type" tag: one prebuilt Decoder reads any of them.
Document: TypeAlias = (
    ItemMaster
    | PurchaseOrder
    | PurchaseOrderChange
    | PurchaseOrderAck
    | AdvanceShipNotice
    | GoodsReceipt
    | InventoryPosition
    | InventoryDelta
    | Invoice
    | ShipmentMilestone
    | ExceptionNotice
    | PurchaseOrderStatus
    | InboundShipment
    | ReceiptDiscrepancy
    | InvoiceMatch
    | AvailabilityChanged
    | InventoryDrift
    | SalesOrder
    | OrderStatus
)


def document_type_of(document: CanonicalDocument | type[CanonicalDocument]) -> str:
    """Return the document type (the tag, e.g. "purchase_order") of a document or its class."""
    cls = document if isinstance(document, type) else type(document)
    return str(cls.__struct_config__.tag)


DOCUMENT_TYPES: Mapping[str, type[CanonicalDocument]] = MappingProxyType(
    {document_type_of(cls): cls for cls in Document.__args__}
)
