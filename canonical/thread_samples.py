"""Documents of one purchase order's thread, built from the order: for the demo and tests.

Each builder takes the order and what differs from it (quantities, prices, counts by line);
dates default to ones relative to the first line's requested date, so a thread built from
`sample_document("purchase_order", n)` reads as a week in March 2026 and one built from an
order dated today reads as the days ahead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from itertools import count

from canonical.common import Money, PartyRef, Quantity, gs1_check_digit
from canonical.invoices import Invoice, InvoiceLine
from canonical.orders import PurchaseOrder, PurchaseOrderAck, PurchaseOrderAckLine
from canonical.shipping import (
    AdvanceShipNotice,
    GoodsReceipt,
    GoodsReceiptLine,
    Pack,
    PackedItem,
    ShippedOrder,
)

__all__ = ["ack", "asn", "invoice", "receipt"]

# SSCCs of the packs built here: unique within a process.
_ids = count(1)


def _requested(po: PurchaseOrder) -> dt.date:
    return po.lines[0].requested_date


def ack(
    po: PurchaseOrder,
    *,
    quantities: Mapping[int, Decimal] | None = None,
    dates: Mapping[int, dt.date] | None = None,
    prices: Mapping[int, Decimal] | None = None,
    rejected: tuple[int, ...] = (),
    extra_line: tuple[int, str] | None = None,
    number: str | None = None,
    ack_date: dt.date | None = None,
) -> PurchaseOrderAck:
    """Every line accepted as ordered unless a mapping says otherwise.

    Dated six days before the first line's requested date unless `ack_date` says otherwise.
    """
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
                promised_date=_requested(po),
            )
        )
    return PurchaseOrderAck(
        po_number=po.po_number,
        ack_number=number,
        ack_date=ack_date or _requested(po) - dt.timedelta(days=6),
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
    ship_date: dt.date | None = None,
    skus: Mapping[int, str] | None = None,
    more_orders: tuple[tuple[str, Mapping[int, Decimal]], ...] = (),
) -> AdvanceShipNotice:
    """One pack per line shipped; `more_orders` adds other orders' (po number, lines).

    Shipped two days before the first line's requested date unless `ship_date` says otherwise.
    """
    skus = skus or {}
    ship_date = ship_date or _requested(po) - dt.timedelta(days=2)

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
    received_at: dt.datetime | None = None,
) -> GoodsReceipt:
    """`counted`: line -> (expected, received) as the warehouse states them.

    Received at 14:00 UTC the day before the requested date unless `received_at` says otherwise.
    """
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
        received_at=received_at
        or dt.datetime.combine(_requested(po) - dt.timedelta(days=1), dt.time(14), dt.UTC),
        location_id="DC-EAST",
        po_number=po.po_number,
        asn_number=asn_number,
        supplier=po.supplier,
        lines=tuple(lines),
    )


def invoice(
    number: str,
    po: PurchaseOrder,
    billed: Mapping[int, tuple[Decimal, Decimal]],
    *,
    invoice_date: dt.date | None = None,
) -> Invoice:
    """`billed`: line -> (quantity, unit price); dated the requested date unless told."""
    lines = tuple(
        InvoiceLine(
            line_number=i,
            po_line_number=n,
            sku=po.lines[n - 1].sku,
            quantity=Quantity(value=q, uom="EA"),
            unit_price=Money(amount=p, currency=po.currency),
            amount=Money(amount=q * p, currency=po.currency),
        )
        for i, (n, (q, p)) in enumerate(billed.items(), start=1)
    )
    subtotal = sum((line.amount.amount for line in lines), Decimal(0))
    return Invoice(
        invoice_number=number,
        invoice_date=invoice_date or _requested(po),
        po_number=po.po_number,
        supplier=po.supplier,
        bill_to=po.buyer,
        currency=po.currency,
        lines=lines,
        subtotal=Money(amount=subtotal, currency=po.currency),
        total=Money(amount=subtotal, currency=po.currency),
    )
