"""Documents of one purchase order's thread, with the quantities and prices a test names.

The order is `sample_document("purchase_order", n)`: lines 1, 2, 3 of 12, 24 and 36 EA at
4.25, 12.50 and 0.99 USD, requested for 2026-03-09, from supplier `acme` to buyer `distco`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from itertools import count

from actors.workflow.inputs import DeliveryOutcome, DocumentArrived
from canonical import (
    AdvanceShipNotice,
    Document,
    GoodsReceipt,
    GoodsReceiptLine,
    Invoice,
    InvoiceLine,
    Money,
    Pack,
    PackedItem,
    PartyRef,
    PurchaseOrder,
    PurchaseOrderAck,
    PurchaseOrderAckLine,
    PurchaseOrderChange,
    PurchaseOrderChangeLine,
    Quantity,
    ShippedOrder,
    sample_document,
)
from canonical.common import gs1_check_digit

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


def ack(
    po: PurchaseOrder,
    *,
    quantities: Mapping[int, Decimal] | None = None,
    dates: Mapping[int, dt.date] | None = None,
    prices: Mapping[int, Decimal] | None = None,
    rejected: tuple[int, ...] = (),
    extra_line: tuple[int, str] | None = None,
    number: str | None = None,
) -> PurchaseOrderAck:
    """Every line accepted as ordered unless a mapping says otherwise."""
    quantities, dates, prices = quantities or {}, dates or {}, prices or {}
    lines = []
    for line in po.lines:
        n = line.line_number
        if n in rejected:
            lines.append(
                PurchaseOrderAckLine(line_number=n, sku=line.sku, status="reject", reason="gone")
            )
            continue
        changed = n in quantities or n in dates or n in prices
        lines.append(
            PurchaseOrderAckLine(
                line_number=n,
                sku=line.sku,
                status="change" if changed else "accept",
                promised_quantity=Quantity(value=quantities.get(n, line.quantity.value), uom="EA"),
                promised_date=dates.get(n, line.requested_date),
                unit_price=Money(amount=prices[n], currency="USD") if n in prices else None,
            )
        )
    if extra_line is not None:
        n, sku = extra_line
        lines.append(
            PurchaseOrderAckLine(
                line_number=n,
                sku=sku,
                status="accept",
                promised_quantity=Quantity(value=Decimal(1), uom="EA"),
                promised_date=REQUESTED,
            )
        )
    return PurchaseOrderAck(
        po_number=po.po_number,
        ack_number=number,
        ack_date=REQUESTED - dt.timedelta(days=6),
        supplier=po.supplier,
        buyer=po.buyer,
        lines=tuple(lines),
    )


def _sscc(n: int) -> str:
    digits = f"00614141{n:09d}"
    return digits + gs1_check_digit(digits)


def asn(
    number: str,
    po: PurchaseOrder,
    quantities: Mapping[int, Decimal],
    *,
    ship_date: dt.date = REQUESTED - dt.timedelta(days=2),
    skus: Mapping[int, str] | None = None,
    more_orders: tuple[tuple[str, Mapping[int, Decimal]], ...] = (),
) -> AdvanceShipNotice:
    """One pack per line shipped; `more_orders` adds other orders' (po number, lines)."""
    skus = skus or {}

    def shipped(po_number: str, lines: Mapping[int, Decimal]) -> ShippedOrder:
        return ShippedOrder(
            po_number=po_number,
            packs=tuple(
                Pack(
                    sscc=_sscc(next(_ids)),
                    kind="carton",
                    items=(
                        PackedItem(
                            po_line_number=n,
                            sku=skus.get(n, po.lines[min(n, len(po.lines)) - 1].sku),
                            quantity=Quantity(value=q, uom="EA"),
                        ),
                    ),
                )
                for n, q in lines.items()
            ),
        )

    return AdvanceShipNotice(
        asn_number=number,
        ship_date=ship_date,
        expected_delivery_date=ship_date + dt.timedelta(days=1),
        supplier=po.supplier,
        ship_to=PartyRef(party_id="DC-EAST"),
        orders=(shipped(po.po_number, quantities), *(shipped(p, q) for p, q in more_orders)),
    )


def receipt(
    number: str,
    po: PurchaseOrder,
    counted: Mapping[int, tuple[Decimal, Decimal]],
    *,
    asn_number: str | None = None,
    damaged: Mapping[int, Decimal] | None = None,
) -> GoodsReceipt:
    """`counted`: line -> (expected, received) as the warehouse states them."""
    damaged = damaged or {}
    lines = []
    for i, (n, (expected, got)) in enumerate(counted.items(), start=1):
        lines.append(
            GoodsReceiptLine(
                line_number=i,
                po_line_number=n,
                sku=po.lines[n - 1].sku,
                uom="EA",
                expected_quantity=expected,
                received_quantity=got,
                short_quantity=max(expected - got, Decimal(0)),
                over_quantity=max(got - expected, Decimal(0)),
                damaged_quantity=damaged.get(n, Decimal(0)),
            )
        )
    return GoodsReceipt(
        receipt_number=number,
        received_at=dt.datetime(2026, 3, 8, 14, tzinfo=dt.UTC),
        location_id="DC-EAST",
        po_number=po.po_number,
        asn_number=asn_number,
        supplier=po.supplier,
        lines=tuple(lines),
    )


def invoice(
    number: str, po: PurchaseOrder, billed: Mapping[int, tuple[Decimal, Decimal]]
) -> Invoice:
    """`billed`: line -> (quantity, unit price)."""
    lines = tuple(
        InvoiceLine(
            line_number=i,
            po_line_number=n,
            sku=po.lines[n - 1].sku,
            quantity=Quantity(value=q, uom="EA"),
            unit_price=Money(amount=p, currency="USD"),
            amount=Money(amount=q * p, currency="USD"),
        )
        for i, (n, (q, p)) in enumerate(billed.items(), start=1)
    )
    subtotal = sum((line.amount.amount for line in lines), Decimal(0))
    return Invoice(
        invoice_number=number,
        invoice_date=REQUESTED,
        po_number=po.po_number,
        supplier=po.supplier,
        bill_to=po.buyer,
        currency="USD",
        lines=lines,
        subtotal=Money(amount=subtotal, currency="USD"),
        total=Money(amount=subtotal, currency="USD"),
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
