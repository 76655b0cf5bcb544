"""Deterministic, valid sample documents for the demo, the load bench and the tests.

`n` varies the business numbers and SKUs so a run of samples does not collide on
idempotency or ids; the same (type, n, supplier) always gives the same document.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from canonical.codec import encode_document
from canonical.common import Money, PartyRef, Quantity, gs1_check_digit
from canonical.documents import Document
from canonical.events import (
    AvailabilityChanged,
    InboundShipment,
    InboundShipmentLine,
    InventoryDrift,
    InvoiceMatch,
    MatchIssue,
    PurchaseOrderStatus,
    ReceiptDiscrepancy,
    ReceiptDiscrepancyLine,
)
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
from canonical.sales import OrderStatus, SalesOrder, SalesOrderLine, sales_order_id
from canonical.shipping import (
    AdvanceShipNotice,
    GoodsReceipt,
    GoodsReceiptLine,
    Pack,
    PackedItem,
    ShipmentMilestone,
    ShippedOrder,
)

__all__ = ["sample_body", "sample_document"]

_DAY0 = dt.date(2026, 3, 2)
_BUYER = PartyRef(party_id="distco", name="DistCo Wholesale", gln="0614141000005")
_DC = PartyRef(party_id="DC-EAST", name="DistCo East DC")
_PRICES = (Decimal("4.25"), Decimal("12.50"), Decimal("0.99"))
_LINES = 3


def sample_document(document_type: str, n: int = 0, *, supplier: str = "acme") -> Document:
    """Return a valid document of `document_type`, varied by `n`, from `supplier`."""
    build = _BUILDERS.get(document_type)
    if build is None:
        raise ValueError(f"no sample for document type {document_type!r}")
    return build(n, PartyRef(party_id=supplier))


def sample_body(document_type: str, n: int = 0, **kw: Any) -> bytes:
    """Return the JSON body a partner would post for `sample_document(document_type, n, **kw)`."""
    return encode_document(sample_document(document_type, n, **kw))


def _sku(n: int, line: int) -> str:
    return f"SKU-{(n * _LINES + line) % 5000:05d}"


def _gtin(n: int, line: int) -> str:
    digits = f"0061414{(n * _LINES + line) % 100_000:05d}"
    return digits + gs1_check_digit(digits)


def _sscc(n: int, pack: int) -> str:
    digits = f"00614141{n % 10**7:07d}{pack:02d}"
    return digits + gs1_check_digit(digits)


def _at(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


def _qty(line: int) -> Quantity:
    return Quantity(value=Decimal(12 * line), uom="EA")


def _price(line: int) -> Money:
    return Money(amount=_PRICES[(line - 1) % len(_PRICES)], currency="USD")


def _po_number(n: int) -> str:
    return f"PO-{n:07d}"


def _item_master(n: int, supplier: PartyRef) -> ItemMaster:
    return ItemMaster(
        sku=_sku(n, 1),
        description=f"Sample item {n}",
        gtin=_gtin(n, 1),
        supplier_id=supplier.party_id,
        supplier_sku=f"V{n:06d}",
        base_uom="EA",
        conversions=(UomConversion(uom="CS", base_units=Decimal(12)),),
        net_weight=Quantity(value=Decimal("0.350"), uom="KG"),
        unit_cost=_price(1),
    )


def _purchase_order(n: int, supplier: PartyRef) -> PurchaseOrder:
    lines = tuple(
        PurchaseOrderLine(
            line_number=i,
            sku=_sku(n, i),
            gtin=_gtin(n, i),
            quantity=_qty(i),
            unit_price=_price(i),
            requested_date=_DAY0 + dt.timedelta(days=7),
        )
        for i in range(1, _LINES + 1)
    )
    return PurchaseOrder(
        po_number=_po_number(n),
        buyer=_BUYER,
        supplier=supplier,
        ship_to=_DC,
        order_date=_DAY0,
        currency="USD",
        lines=lines,
    )


def _purchase_order_change(n: int, supplier: PartyRef) -> PurchaseOrderChange:
    return PurchaseOrderChange(
        po_number=_po_number(n),
        change_number=1,
        change_date=_DAY0 + dt.timedelta(days=1),
        buyer=_BUYER,
        supplier=supplier,
        currency="USD",
        lines=(
            PurchaseOrderChangeLine(
                line_number=1, change="change", sku=_sku(n, 1), quantity=_qty(2)
            ),
            PurchaseOrderChangeLine(line_number=2, change="cancel", sku=_sku(n, 2)),
        ),
    )


def _purchase_order_ack(n: int, supplier: PartyRef) -> PurchaseOrderAck:
    promised = _DAY0 + dt.timedelta(days=8)
    return PurchaseOrderAck(
        po_number=_po_number(n),
        ack_date=_DAY0 + dt.timedelta(days=1),
        supplier=supplier,
        buyer=_BUYER,
        lines=(
            PurchaseOrderAckLine(
                line_number=1,
                sku=_sku(n, 1),
                status="accept",
                promised_quantity=_qty(1),
                promised_date=promised,
            ),
            PurchaseOrderAckLine(
                line_number=2,
                sku=_sku(n, 2),
                status="change",
                promised_quantity=_qty(1),
                promised_date=promised + dt.timedelta(days=3),
                reason="partial stock",
            ),
            PurchaseOrderAckLine(
                line_number=3, sku=_sku(n, 3), status="reject", reason="discontinued"
            ),
        ),
    )


def _advance_ship_notice(n: int, supplier: PartyRef) -> AdvanceShipNotice:
    packs = tuple(
        Pack(
            sscc=_sscc(n, i),
            kind="pallet" if i == 1 else "carton",
            items=(
                PackedItem(
                    po_line_number=i,
                    sku=_sku(n, i),
                    gtin=_gtin(n, i),
                    quantity=_qty(i),
                    lot_number=f"L{n:06d}{i}",
                    expiry_date=_DAY0 + dt.timedelta(days=365),
                ),
            ),
        )
        for i in range(1, _LINES + 1)
    )
    return AdvanceShipNotice(
        asn_number=f"ASN-{n:07d}",
        ship_date=_DAY0 + dt.timedelta(days=6),
        expected_delivery_date=_DAY0 + dt.timedelta(days=7),
        supplier=supplier,
        ship_to=_DC,
        carrier_scac="ODFL",
        bill_of_lading=f"BOL{n:09d}",
        orders=(ShippedOrder(po_number=_po_number(n), packs=packs),),
    )


def _goods_receipt(n: int, supplier: PartyRef) -> GoodsReceipt:
    twelve, ten = Decimal(12), Decimal(10)
    return GoodsReceipt(
        receipt_number=f"GR-{n:07d}",
        received_at=_at(_DAY0 + dt.timedelta(days=7), 14),
        location_id="DC-EAST",
        po_number=_po_number(n),
        asn_number=f"ASN-{n:07d}",
        supplier=supplier,
        lines=(
            GoodsReceiptLine(
                line_number=1,
                po_line_number=1,
                sku=_sku(n, 1),
                uom="EA",
                expected_quantity=twelve,
                received_quantity=twelve,
            ),
            GoodsReceiptLine(
                line_number=2,
                po_line_number=2,
                sku=_sku(n, 2),
                uom="EA",
                expected_quantity=twelve,
                received_quantity=ten,
                short_quantity=Decimal(2),
                damaged_quantity=Decimal(1),
            ),
        ),
    )


def _inventory_position(n: int, supplier: PartyRef) -> InventoryPosition:
    return InventoryPosition(
        sku=_sku(n, 1),
        location_id="DC-EAST",
        uom="EA",
        as_of=_at(_DAY0, 6),
        on_hand=Decimal(120),
        allocated=Decimal(30),
        in_transit=Decimal(48),
        quarantined=Decimal(5),
        available=Decimal(85),
    )


def _inventory_delta(n: int, supplier: PartyRef) -> InventoryDelta:
    return InventoryDelta(
        delta_id=f"{supplier.party_id}-delta-{n}",
        sequence=n + 1,
        sku=_sku(n, 1),
        location_id="DC-EAST",
        uom="EA",
        occurred_at=_at(_DAY0, 9),
        reason="receipt",
        reference=f"GR-{n:07d}",
        on_hand=Decimal(12),
        in_transit=Decimal(-12),
        available=Decimal(12),
    )


def _invoice(n: int, supplier: PartyRef) -> Invoice:
    lines = tuple(
        InvoiceLine(
            line_number=i,
            po_line_number=i,
            sku=_sku(n, i),
            quantity=_qty(i),
            unit_price=_price(i),
            amount=Money(amount=_qty(i).value * _price(i).amount, currency="USD"),
        )
        for i in range(1, _LINES + 1)
    )
    subtotal = sum((line.amount.amount for line in lines), Decimal(0))
    tax, charges = Decimal("12.34"), Decimal("25.00")
    return Invoice(
        invoice_number=f"INV-{n:07d}",
        invoice_date=_DAY0 + dt.timedelta(days=8),
        due_date=_DAY0 + dt.timedelta(days=38),
        po_number=_po_number(n),
        supplier=supplier,
        bill_to=_BUYER,
        currency="USD",
        lines=lines,
        subtotal=Money(amount=subtotal, currency="USD"),
        tax=Money(amount=tax, currency="USD"),
        charges=Money(amount=charges, currency="USD"),
        total=Money(amount=subtotal + tax + charges, currency="USD"),
    )


def _shipment_milestone(n: int, supplier: PartyRef) -> ShipmentMilestone:
    return ShipmentMilestone(
        shipment_id=f"ASN-{n:07d}",
        milestone="in_transit",
        occurred_at=_at(_DAY0 + dt.timedelta(days=6), 18),
        carrier_scac="ODFL",
        tracking_number=f"BOL{n:09d}",
        location="Harrisburg, PA",
        estimated_delivery_at=_at(_DAY0 + dt.timedelta(days=7), 10),
        po_numbers=(_po_number(n),),
    )


def _exception(n: int, supplier: PartyRef) -> ExceptionNotice:
    return ExceptionNotice(
        exception_id=f"EXC-{n:07d}",
        kind="quantity_discrepancy",
        severity="warning",
        raised_at=_at(_DAY0 + dt.timedelta(days=7), 15),
        reference=DocumentRef(document_type="goods_receipt", document_number=f"GR-{n:07d}"),
        description=f"{_po_number(n)} line 2 received 10 of 12 EA from {supplier.party_id}",
    )


def _purchase_order_status(n: int, supplier: PartyRef) -> PurchaseOrderStatus:
    return PurchaseOrderStatus(
        po_number=_po_number(n),
        buyer=_BUYER,
        supplier=supplier,
        status="acknowledged",
        previous_status="sent",
        changed_at=_at(_DAY0 + dt.timedelta(days=1), 9),
        cause=DocumentRef(document_type="purchase_order_ack", document_number=_po_number(n)),
    )


def _inbound_shipment(n: int, supplier: PartyRef) -> InboundShipment:
    return InboundShipment(
        po_number=_po_number(n),
        asn_number=f"ASN-{n:07d}",
        buyer=_BUYER,
        supplier=supplier,
        ship_to=_DC,
        ship_date=_DAY0 + dt.timedelta(days=6),
        expected_delivery_date=_DAY0 + dt.timedelta(days=7),
        carrier_scac="ODFL",
        bill_of_lading=f"BOL{n:09d}",
        lines=tuple(
            InboundShipmentLine(
                po_line_number=i,
                sku=_sku(n, i),
                quantity=_qty(i),
                shipped_to_date=_qty(i).value,
                ordered_quantity=_qty(i).value,
            )
            for i in range(1, _LINES + 1)
        ),
    )


def _receipt_discrepancy(n: int, supplier: PartyRef) -> ReceiptDiscrepancy:
    return ReceiptDiscrepancy(
        po_number=_po_number(n),
        receipt_number=f"GR-{n:07d}",
        asn_number=f"ASN-{n:07d}",
        buyer=_BUYER,
        supplier=supplier,
        location_id="DC-EAST",
        received_at=_at(_DAY0 + dt.timedelta(days=7), 14),
        lines=(
            ReceiptDiscrepancyLine(
                po_line_number=2,
                sku=_sku(n, 2),
                uom="EA",
                expected_quantity=Decimal(24),
                received_quantity=Decimal(22),
                short_quantity=Decimal(2),
                damaged_quantity=Decimal(1),
            ),
        ),
    )


def _invoice_match(n: int, supplier: PartyRef) -> InvoiceMatch:
    return InvoiceMatch(
        invoice_number=f"INV-{n:07d}",
        po_number=_po_number(n),
        buyer=_BUYER,
        supplier=supplier,
        result="held",
        issues=(
            MatchIssue(
                reason="price",
                line_number=2,
                description="unit price 13.00 USD, ordered at 12.50 USD",
            ),
        ),
        matched_at=_at(_DAY0 + dt.timedelta(days=8), 10),
    )


def _availability_changed(n: int, supplier: PartyRef) -> AvailabilityChanged:
    return AvailabilityChanged(
        sku=_sku(n, 1),
        location_id="DC-EAST",
        uom="EA",
        on_hand=Decimal(120 + n),
        allocated=Decimal(30),
        in_transit=Decimal(48),
        quarantined=Decimal(5),
        available=Decimal(85 + n),
        as_of=_at(_DAY0, 9),
    )


def _inventory_drift(n: int, supplier: PartyRef) -> InventoryDrift:
    return InventoryDrift(
        sku=_sku(n, 1),
        location_id="DC-EAST",
        uom="EA",
        snapshot_as_of=_at(_DAY0, 12),
        position_as_of=_at(_DAY0, 9),
        on_hand=Decimal(-2 - n),
    )


def _sales_order(n: int, supplier: PartyRef) -> SalesOrder:
    # `supplier` names the customer here: the account that submits the order.
    return SalesOrder(
        order_id=sales_order_id(supplier.party_id, f"key-{n}"),
        customer_id=supplier.party_id,
        customer_po_number=f"CPO-{n:07d}",
        ship_to="SHIP-1",
        lines=tuple(
            SalesOrderLine(line_number=line, sku=_sku(n, line), quantity=_qty(line))
            for line in range(1, _LINES + 1)
        ),
        requested_date=_DAY0 + dt.timedelta(days=5),
        submitted_at=_at(_DAY0, 9),
    )


def _order_status(n: int, supplier: PartyRef) -> OrderStatus:
    return OrderStatus(
        order_id=sales_order_id(supplier.party_id, f"key-{n}"),
        status="shipped",
        changed_at=_at(_DAY0 + dt.timedelta(days=2), 16),
        milestone="picked up",
        carrier_scac="ODFL",
        tracking_number=f"BOL{n:09d}",
        erp_order_number=f"SO{n:07d}",
    )


_BUILDERS: dict[str, Callable[[int, PartyRef], Document]] = {
    "item_master": _item_master,
    "purchase_order": _purchase_order,
    "purchase_order_change": _purchase_order_change,
    "purchase_order_ack": _purchase_order_ack,
    "advance_ship_notice": _advance_ship_notice,
    "goods_receipt": _goods_receipt,
    "inventory_position": _inventory_position,
    "inventory_delta": _inventory_delta,
    "invoice": _invoice,
    "shipment_milestone": _shipment_milestone,
    "exception": _exception,
    "purchase_order_status": _purchase_order_status,
    "inbound_shipment": _inbound_shipment,
    "receipt_discrepancy": _receipt_discrepancy,
    "invoice_match": _invoice_match,
    "availability_changed": _availability_changed,
    "inventory_drift": _inventory_drift,
    "sales_order": _sales_order,
    "order_status": _order_status,
}
