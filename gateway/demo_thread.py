"""The demo's purchase-order thread: one order from release to a held invoice, then its trace.

The ERP's order (released by `gateway.demo`) reaches acme's order desk; then acme acknowledges
it with line 1 beyond its 5 % tolerance (an exception), ships it in two ASNs, the warehouse
(globex) receives the first one unit short (a discrepancy), and acme invoices line 2 above the
ordered price (the three-way match holds it). Each document is a signed webhook, as a partner
would post it; the events the thread emits arrive on the demo's tap queue; the trace printed
at the end is what `gateway trace PO-NUMBER` prints.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

import aio_pika
import anyio
import httpx
import msgspec

from canonical import (
    Document,
    PurchaseOrder,
    decode_envelope,
    document_type_of,
    encode_document,
    sample_document,
)
from canonical.thread_samples import ack, asn, invoice, receipt
from gateway.store import Store
from gateway.store.workflow_state import reading
from gateway.trace import find_threads, render, thread_trace

__all__ = ["dated_order", "play_thread"]

D = Decimal
# Each step waits at most this long for the thread to move (the demo's bound, not a target).
STEP_TIMEOUT_S = 20.0
POLL_S = 0.05
# Events of the thread collected from the tap queue at the end: at most this many.
MAX_EVENTS = 50

Sign = Callable[[str, bytes], dict[str, str]]


def dated_order(n: int, supplier: str, today: dt.date) -> PurchaseOrder:
    """The sample order `n` for `supplier`, requested ten days from `today`.

    The samples' dates are fixed; a demo run later than them would find every deadline of
    the thread passed and see late-ASN and late-receipt exceptions at once.
    """
    order = sample_document("purchase_order", n, supplier=supplier)
    assert isinstance(order, PurchaseOrder)  # what the sample of that type is
    requested = today + dt.timedelta(days=10)
    return msgspec.structs.replace(
        order,
        order_date=today,
        lines=tuple(msgspec.structs.replace(x, requested_date=requested) for x in order.lines),
    )


async def play_thread(
    po: PurchaseOrder,
    *,
    http: httpx.AsyncClient,
    webhooks_url: str,
    sign: Sign,
    store: Store,
    store_path: str,
    tap: aio_pika.abc.AbstractQueue,
) -> None:
    """Drive the released order `po` to a held invoice, print its events and its trace."""
    await _until_status(store, po.po_number, "sent")
    print(f"\nthread {po.supplier.party_id}/{po.po_number}: the supplier and the warehouse answer")
    ordered = {x.line_number: x.quantity.value for x in po.lines}
    price = {x.line_number: x.unit_price.amount for x in po.lines}
    script: list[tuple[str, Document, str, str]] = [
        (
            "acme",
            ack(po, quantities={1: ordered[1] + 1}, ack_date=po.order_date),
            "acknowledged",
            f"line 1 confirmed at {ordered[1] + 1} of {ordered[1]}: beyond acme's 5 % tolerance",
        ),
        (
            "acme",
            asn("ASN-42-1", po, {1: ordered[1], 2: D(10)}),
            "shipped",
            "first of two shipments",
        ),
        (
            "acme",
            asn("ASN-42-2", po, {2: ordered[2] - 10, 3: ordered[3]}),
            "shipped",
            "the rest",
        ),
        (
            "globex",
            receipt(
                "GR-42-1",
                po,
                {1: (ordered[1], ordered[1] - 1), 2: (D(10), D(10))},
                asn_number="ASN-42-1",
                received_at=dt.datetime.now(dt.UTC),
            ),
            "received",
            "line 1 received one short",
        ),
        (
            "acme",
            invoice("INV-42-1", po, {2: (D(10), price[2] + D("0.50"))}, invoice_date=po.order_date),
            "invoiced",
            f"line 2 billed at {price[2] + D('0.50')}, ordered at {price[2]}",
        ),
    ]
    for partner, document, status, why in script:
        body = encode_document(document)
        kind = document_type_of(document)
        response = await http.post(
            f"{webhooks_url}/{partner}/{kind}", content=body, headers=sign(partner, body)
        )
        print(f"  {partner:7} {kind:22} -> {response.status_code} ({why})")
        await _until_status(store, po.po_number, status)
    (thread,) = await store.workflow.threads_of_order(po.po_number, po.buyer.party_id)
    await _print_events(tap, thread.correlation_id)
    print(f"\n$ gateway trace {po.po_number}")
    async with reading(store_path) as ledger:
        for row in await find_threads(ledger, po.po_number):
            print(render(await thread_trace(ledger, row)))


async def _until_status(store: Store, po_number: str, status: str) -> None:
    async def reached() -> bool:
        rows = await store.workflow.threads_of_order(po_number)
        return bool(rows) and rows[0].status == status

    with anyio.fail_after(STEP_TIMEOUT_S):
        # The thread has no event a demo could wait on; the store is read, bounded.
        while not await reached():  # noqa: ASYNC110
            await anyio.sleep(POLL_S)


async def _print_events(tap: aio_pika.abc.AbstractQueue, correlation_id: str | None) -> None:
    """The thread's messages (the order and every event) as the tap queue got them."""
    print(f"\nthe thread's messages on the events exchange (correlation id {correlation_id}):")
    seen = 0
    with anyio.move_on_after(2.0):  # what was emitted is on the queue already: take it all
        async with tap.iterator() as messages:
            async for message in messages:
                async with message.process():
                    envelope = decode_envelope(message.body)
                    if envelope.correlation_id != correlation_id:
                        continue  # the partners' own documents, and the earlier part of the demo
                    seen += 1
                    document = envelope.document
                    detail = next(
                        (
                            str(getattr(document, name))
                            for name in ("kind", "status", "result", "asn_number", "po_number")
                            if hasattr(document, name)
                        ),
                        "",
                    )
                    print(f"  {message.routing_key:36} {detail}")
                if seen >= MAX_EVENTS:
                    break
