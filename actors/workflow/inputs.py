"""What a purchase-order thread takes in: a document, a delivery outcome, a timer that fired.

Each input has a `message_id` that is the thread's consumed mark: applied once per thread, a
replay of the same id changes nothing. A document's id is its envelope's; a delivery outcome's
names the delivery and the outcome; a timer's names its kind and generation, so a timer fires
at most once per arming.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from msgspec import Struct

from canonical import (
    AdvanceShipNotice,
    Document,
    GoodsReceipt,
    Invoice,
    PurchaseOrder,
    PurchaseOrderAck,
    PurchaseOrderChange,
)

__all__ = [
    "INPUT_DOCUMENTS",
    "ORDER_DOCUMENTS",
    "Channel",
    "DeliveryOutcome",
    "DocumentArrived",
    "ThreadInput",
    "ThreadKey",
    "TimerFired",
    "TimerKind",
    "thread_keys",
]

TimerKind = Literal["acknowledgement_due", "shipment_due", "receipt_due", "park_expiry"]
Channel = Literal["amqp", "webhook", "delivery", "timer"]

# Documents the ERP releases (only its own start or change a thread) and those partners send.
ORDER_DOCUMENTS = ("purchase_order", "purchase_order_change")
INPUT_DOCUMENTS = (
    *ORDER_DOCUMENTS,
    "purchase_order_ack",
    "advance_ship_notice",
    "goods_receipt",
    "invoice",
)


class ThreadKey(NamedTuple):
    """One purchase order's thread: the supplier and the PO number every document names.

    Suppliers' ASNs and warehouses' receipts name no buyer, so (supplier, PO number), the
    business reference all of them carry, is what joins a document to its thread; the buyer
    is part of the thread's state, from the order.
    """

    supplier: str
    po_number: str

    def __str__(self) -> str:
        return f"{self.supplier}/{self.po_number}"


class DocumentArrived(Struct, frozen=True, kw_only=True, tag="document"):
    """A committed document of the thread: from the ERP (amqp) or a partner (webhook)."""

    message_id: str
    correlation_id: str
    partner_id: str
    channel: Channel
    accepted_at: float
    document: Document
    # The document's W3C trace: the events this input makes continue it.
    traceparent: str | None = None


class DeliveryOutcome(Struct, frozen=True, kw_only=True, tag="delivery"):
    """What became of the order's delivery to the supplier: delivered, or dead."""

    message_id: str  # "delivery:{id}:{outcome}"
    delivered_message_id: str  # the order's (or change's) own message id
    document_type: str
    partner_id: str
    outcome: Literal["delivered", "dead"]
    settled_at: float
    reason: str | None = None
    traceparent: str | None = None  # the delivered message's W3C trace


class TimerFired(Struct, frozen=True, kw_only=True, tag="timer"):
    """A durable timer of the thread came due."""

    message_id: str  # "timer:{kind}:{generation}"
    kind: TimerKind
    generation: int
    due_at: float

    @classmethod
    def of(cls, kind: TimerKind, generation: int, due_at: float) -> TimerFired:
        return cls(
            message_id=f"timer:{kind}:{generation}", kind=kind, generation=generation, due_at=due_at
        )


ThreadInput = DocumentArrived | DeliveryOutcome | TimerFired


def thread_keys(document: Document, *, erp_source: str, partner_id: str) -> list[ThreadKey]:
    """The threads a committed document feeds; [] for documents no thread takes.

    Orders and their changes start or change a thread only when the ERP sent them (a partner
    posting a purchase order is a customer's order, not ours). An ASN feeds every order it
    ships.
    """
    match document:
        case PurchaseOrder() | PurchaseOrderChange():
            if partner_id != erp_source:
                return []
            return [ThreadKey(document.supplier.party_id, document.po_number)]
        case PurchaseOrderAck() | GoodsReceipt() | Invoice():
            return [ThreadKey(document.supplier.party_id, document.po_number)]
        case AdvanceShipNotice():
            return [ThreadKey(document.supplier.party_id, o.po_number) for o in document.orders]
    return []
