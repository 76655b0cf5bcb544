"""The business exception made visible: a document that failed a rule, a late or short delivery."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct

from canonical.common import CanonicalDocument, DocumentNumber, LineNumber, Timestamp, whole

__all__ = ["DocumentRef", "ExceptionKind", "ExceptionNotice", "Severity"]

ExceptionKind = Literal[
    "invalid_document",
    "quantity_discrepancy",
    "price_mismatch",
    "late_shipment",
    "late_acknowledgement",
    "rejected_line",
    "duplicate_document",
    "delivery_failed",
    "other",
    # Raised by the purchase-order thread (actors/workflow); appended, so older values keep
    # their meaning.
    "unknown_line",
    "over_shipment",
    "shipped_before_acknowledged",
    "late_asn",
    "late_receipt",
    "promised_date_late",
    "receipt_discrepancy",
    "invoice_mismatch",
    "unknown_purchase_order",
    # Raised by the inventory positions (actors/inventory).
    "inventory_gap",
    "negative_inventory",
]
Severity = Literal["info", "warning", "error", "critical"]
Id = Annotated[str, Meta(min_length=1, max_length=128)]


class DocumentRef(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which document an exception is about: its type, business number and/or message id."""

    document_type: Annotated[str, Meta(pattern=whole(r"[a-z][a-z0-9_]{0,63}"))]
    document_number: DocumentNumber | None = None
    message_id: Id | None = None


class ExceptionNotice(CanonicalDocument, tag="exception", frozen=True, kw_only=True):
    """A business exception raised for people to act on, tied to a document and its thread."""

    exception_id: Id
    kind: ExceptionKind
    severity: Severity
    raised_at: Timestamp
    reference: DocumentRef
    correlation_id: Id | None = None
    description: Annotated[str, Meta(min_length=1, max_length=2000)]
    # Added with the purchase-order thread; defaults keep older notices valid.
    po_number: DocumentNumber | None = None
    line_number: LineNumber | None = None
