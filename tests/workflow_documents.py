"""Documents of one purchase order's thread, with the quantities and prices a test names.

The order is `sample_document("purchase_order", n)`: lines 1, 2, 3 of 12, 24 and 36 EA at
4.25, 12.50 and 0.99 USD, requested for 2026-03-09, from supplier `acme` to buyer `distco`.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from itertools import count

from actors.workflow.inputs import DeliveryOutcome, DocumentArrived
from canonical import (
    Document,
    PurchaseOrder,
    PurchaseOrderChange,
    PurchaseOrderChangeLine,
    sample_document,
)

# The thread's documents are built by canonical.thread_samples (the demo uses them too).
from canonical.thread_samples import ack, asn, invoice, receipt  # noqa: F401

REQUESTED = dt.date(2026, 3, 9)
T0 = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC).timestamp()
SUPPLIER = "acme"
_ids = count(1)


def order(n: int = 1, supplier: str = SUPPLIER) -> PurchaseOrder:
    document = sample_document("purchase_order", n, supplier=supplier)
    assert isinstance(document, PurchaseOrder)
    return document


def ordered(po: PurchaseOrder, line: int) -> Decimal:
    return po.lines[line - 1].quantity.value


def price(po: PurchaseOrder, line: int) -> Decimal:
    return po.lines[line - 1].unit_price.amount


def arrived(
    document: Document,
    *,
    partner: str = SUPPLIER,
    message_id: str | None = None,
    at: float = T0,
    correlation_id: str = "corr-po",
) -> DocumentArrived:
    return DocumentArrived(
        message_id=message_id or f"msg-{next(_ids)}",
        correlation_id=correlation_id,
        partner_id=partner,
        channel="amqp" if partner == "erp" else "webhook",
        accepted_at=at,
        document=document,
    )


def released(po: PurchaseOrder, *, at: float = T0) -> DocumentArrived:
    return arrived(po, partner="erp", message_id=f"po-{po.po_number}", at=at)


def delivered(po: PurchaseOrder, *, at: float, outcome: str = "delivered") -> DeliveryOutcome:
    return DeliveryOutcome(
        message_id=f"delivery:1:{outcome}",
        delivered_message_id=f"po-{po.po_number}",
        document_type="purchase_order",
        partner_id=SUPPLIER,
        outcome=outcome,  # type: ignore[arg-type]
        settled_at=at,
        reason=None if outcome == "delivered" else "HTTP 500 until max age",
    )


def change(
    po: PurchaseOrder, number: int, lines: tuple[PurchaseOrderChangeLine, ...]
) -> PurchaseOrderChange:
    return PurchaseOrderChange(
        po_number=po.po_number,
        change_number=number,
        change_date=REQUESTED - dt.timedelta(days=5),
        buyer=po.buyer,
        supplier=po.supplier,
        currency="USD",
        lines=lines,
    )
