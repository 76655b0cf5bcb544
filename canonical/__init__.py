"""Canonical, versioned business documents and the envelope they travel in.

Documents are frozen msgspec Structs told apart by their "document_type" tag; `Document` is
their union. Decode partner bodies with `decode_document`, which names every invalid field.
"""

from canonical.codec import (
    MAX_FIELD_ERRORS,
    decode_document,
    decode_envelope,
    encode_document,
    encode_envelope,
)
from canonical.common import (
    Address,
    CanonicalDocument,
    InvalidField,
    Money,
    PartyRef,
    Quantity,
)
from canonical.documents import DOCUMENT_TYPES, Document, document_type_of
from canonical.envelope import Envelope, new_envelope
from canonical.errors import FieldError, InvalidDocument
from canonical.events import (
    InboundShipment,
    InboundShipmentLine,
    InvoiceMatch,
    MatchIssue,
    PurchaseOrderStatus,
    ReceiptDiscrepancy,
    ReceiptDiscrepancyLine,
)
from canonical.ids import new_message_id
from canonical.inventory import InventoryDelta, InventoryPosition, ItemMaster, UomConversion
from canonical.invoices import Invoice, InvoiceLine
from canonical.notices import DocumentRef, ExceptionNotice
from canonical.orders import (
    PurchaseOrder,
    PurchaseOrderAck,
    PurchaseOrderAckLine,
    PurchaseOrderChange,
    PurchaseOrderChangeLine,
    PurchaseOrderLine,
)
from canonical.outbox import OutboxRecord, routing_key
from canonical.sales import OrderStatus, SalesOrder, SalesOrderLine, sales_order_id
from canonical.samples import sample_body, sample_document
from canonical.schema import document_schemas, write_schemas
from canonical.shipping import (
    AdvanceShipNotice,
    GoodsReceipt,
    GoodsReceiptLine,
    Pack,
    PackedItem,
    ShipmentMilestone,
    ShippedOrder,
)

__all__ = [
    "DOCUMENT_TYPES",
    "MAX_FIELD_ERRORS",
    "Address",
    "AdvanceShipNotice",
    "CanonicalDocument",
    "Document",
    "DocumentRef",
    "Envelope",
    "ExceptionNotice",
    "FieldError",
    "GoodsReceipt",
    "GoodsReceiptLine",
    "InboundShipment",
    "InboundShipmentLine",
    "InvalidDocument",
    "InvalidField",
    "InventoryDelta",
    "InventoryPosition",
    "Invoice",
    "InvoiceLine",
    "InvoiceMatch",
    "ItemMaster",
    "MatchIssue",
    "Money",
    "OrderStatus",
    "OutboxRecord",
    "Pack",
    "PackedItem",
    "PartyRef",
    "PurchaseOrder",
    "PurchaseOrderAck",
    "PurchaseOrderAckLine",
    "PurchaseOrderChange",
    "PurchaseOrderChangeLine",
    "PurchaseOrderLine",
    "PurchaseOrderStatus",
    "Quantity",
    "ReceiptDiscrepancy",
    "ReceiptDiscrepancyLine",
    "SalesOrder",
    "SalesOrderLine",
    "ShipmentMilestone",
    "ShippedOrder",
    "UomConversion",
    "decode_document",
    "decode_envelope",
    "document_schemas",
    "document_type_of",
    "encode_document",
    "encode_envelope",
    "new_envelope",
    "new_message_id",
    "routing_key",
    "sales_order_id",
    "sample_body",
    "sample_document",
    "write_schemas",
]
