"""The state of one purchase-order thread: what was ordered, confirmed, shipped, received, billed.

A frozen Struct, replaced (never changed in place) by each step and kept in the store as
msgpack between passivation and rehydration. Quantities are per order line and summed across
documents (split shipments are ordinary). Dicts are never mutated: a step builds new ones.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import msgspec
from msgspec import Struct

from actors.workflow.inputs import DeliveryOutcome, DocumentArrived, ThreadKey, TimerKind
from canonical import PartyRef
from canonical.events import ThreadStatus
from canonical.orders import AckStatus

__all__ = [
    "STATUS_ORDER",
    "LineAck",
    "OpenException",
    "OrderLine",
    "ThreadState",
    "decode_state",
    "encode_state",
]

# A thread's status only moves forward along this order (a late ack after the shipment does
# not take it back to "acknowledged").
STATUS_ORDER: tuple[ThreadStatus, ...] = (
    "awaiting_order",
    "released",
    "sent",
    "acknowledged",
    "shipped",
    "received",
    "invoiced",
    "matched",
    "closed",
)


class OrderLine(Struct, frozen=True, kw_only=True):
    """One ordered line as it stands after the changes applied so far."""

    line_number: int
    sku: str
    quantity: Decimal
    uom: str
    unit_price: Decimal
    requested_date: dt.date
    cancelled: bool = False


class LineAck(Struct, frozen=True, kw_only=True):
    """The supplier's answer for one line."""

    status: AckStatus
    quantity: Decimal | None = None
    promised_date: dt.date | None = None
    unit_price: Decimal | None = None


class OpenException(Struct, frozen=True, kw_only=True):
    """An exception (or a discrepancy, or a held invoice) raised and not yet resolved."""

    exception_id: str
    kind: str
    raised_at: float
    description: str
    line_number: int | None = None


class ThreadState(Struct, frozen=True, kw_only=True):
    """Everything the rules know of one purchase order's thread."""

    supplier: str
    po_number: str
    status: ThreadStatus = "awaiting_order"
    correlation_id: str | None = None
    buyer: PartyRef | None = None
    supplier_party: PartyRef | None = None
    ship_to: PartyRef | None = None
    currency: str | None = None
    lines: dict[int, OrderLine] = {}
    changes: tuple[int, ...] = ()
    acks: dict[int, LineAck] = {}
    # Quantities per order line, summed across every ASN, receipt and invoice so far.
    shipped: dict[int, Decimal] = {}
    received: dict[int, Decimal] = {}
    invoiced: dict[int, Decimal] = {}
    # Per ASN number, what it shipped per line: a receipt is compared with its own ASN.
    asns: dict[str, dict[int, Decimal]] = {}
    receipts: tuple[str, ...] = ()
    receipts_invoiced: tuple[str, ...] = ()
    invoices: tuple[str, ...] = ()
    # Message ids of every input applied (or parked): the same input again is a no-op. The
    # store's journal holds the same marks durably; a thread sees a handful of inputs.
    applied: tuple[str, ...] = ()
    # "document_type:number" -> fingerprint of the document first seen under that number.
    seen: dict[str, str] = {}
    # Inputs that came before what they need (the order, or a receipt's ASN), in order.
    parked: tuple[DocumentArrived | DeliveryOutcome, ...] = ()
    # The timers this state implies, by kind: their due times (the store keeps the rows).
    timers: dict[TimerKind, float] = {}
    exceptions: tuple[OpenException, ...] = ()
    delivered_at: float | None = None
    acknowledged_at: float | None = None

    @classmethod
    def new(cls, key: ThreadKey) -> ThreadState:
        return cls(supplier=key.supplier, po_number=key.po_number)

    @property
    def ordered(self) -> bool:
        """Whether the order itself has arrived."""
        return bool(self.lines)

    @property
    def acknowledged(self) -> bool:
        return bool(self.acks)

    def line_number_of(self, sku: str) -> int | None:
        """The order line of `sku`, for documents that name no line number."""
        for line in self.lines.values():
            if line.sku == sku:
                return line.line_number
        return None


_encoder = msgspec.msgpack.Encoder(decimal_format="string")
_decoder = msgspec.msgpack.Decoder(ThreadState)


def encode_state(state: ThreadState) -> bytes:
    """The state as the store keeps it (msgpack)."""
    return _encoder.encode(state)


def decode_state(blob: bytes) -> ThreadState:
    return _decoder.decode(blob)
