"""A purchase order's whole thread through the running gateway, against the real RabbitMQ node.

The ERP is a plain aio-pika client publishing the released order; acme's order desk is a real
HTTP server on loopback receiving it as a signed webhook; acme (supplier) and globex
(warehouse) post their documents as signed webhooks; the ERP's and the warehouse's queues are
bound to the events exchange; `gateway trace` is the CLI in a child process.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from functools import partial
from pathlib import Path

import aio_pika
import anyio
import httpx
import pytest
from configkit import base, compose, erp_section, partner, webhook, workflow
from delivery_receiver import OK, Receiver, answering
from gatewaykit import Partner, drain, load
from test_erp_ingress_gateway import Erp, until
from workflow_documents import T0, ack, asn, invoice, order, receipt
from workflow_kit import ManualClock, clock_from

from canonical import (
    Document,
    ExceptionNotice,
    InboundShipment,
    InvoiceMatch,
    ReceiptDiscrepancy,
    decode_envelope,
    document_type_of,
    encode_document,
)
from gateway.app import Gateway
from protocols.http.server import serve

pytestmark = [pytest.mark.anyio, pytest.mark.rabbitmq]

D = Decimal
ACME = Partner("acme")
GLOBEX = Partner("globex")
ERP_KEYS = (
    "purchase_order_ack.*",
    "purchase_order_status.*",
    "exception.*",
    "receipt_discrepancy.*",
    "invoice_match.*",
)


def config_text(tmp_path: Path, amqp_url: str, erp: Erp, receiver: Receiver, port: int) -> str:
    """acme supplies (its order desk on `port`), globex receives goods; the thread's tolerances."""
    desk = webhook(f"http://127.0.0.1:{port}/hooks/orders", receiver.secret)
    return compose(
        base(tmp_path, amqp_url, log_level="WARNING"),
        erp_section(erp),
        workflow({"acme": {"quantity_percent": 5.0}}),
        partner(
            ACME.id,
            [ACME.secret],
            name="Acme Supplies",
            sends=["purchase_order_ack", "advance_ship_notice", "invoice"],
            receives=["purchase_order"],
            per_second=1000.0,
            extra=desk,
        ),
        partner(
            GLOBEX.id,
            [GLOBEX.secret],
            name="Globex Logistics",
            sends=["goods_receipt"],
            per_second=1000.0,
        ),
    )


@asynccontextmanager
async def queue_for(
    amqp_url: str, keys: tuple[str, ...]
) -> AsyncIterator[aio_pika.abc.AbstractQueue]:
    """A fresh queue bound to the events exchange with `keys`, deleted afterwards."""
    async with await aio_pika.connect(amqp_url) as connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange("gateway.events", "topic", durable=True)
        queue = await channel.declare_queue(f"test.workflow.{uuid.uuid4().hex[:8]}", durable=True)
        for key in keys:
            await queue.bind(exchange, key)
        try:
            yield queue
        finally:
            await queue.delete(if_unused=False, if_empty=False)


async def post(http: httpx.AsyncClient, partner: Partner, document: Document) -> str:
    body = encode_document(document)
    response = await http.post(
        f"/webhooks/{partner.id}/{document_type_of(document)}",
        content=body,
        headers=partner.headers(body),
    )
    assert response.status_code == 202, response.text
    message_id: str = response.json()["message_ids"][0]
    return message_id


async def test_a_purchase_order_thread_from_release_to_a_held_invoice(
    tmp_path: Path, amqp_url: str
) -> None:
    po = order(31)
    erp = Erp()
    receiver = Receiver(answering(then=OK))
    async with (
        anyio.create_task_group() as tg,
        queue_for(amqp_url, ERP_KEYS) as erp_queue,
        queue_for(amqp_url, ("inbound_shipment.*",)) as warehouse_queue,
    ):
        port = await tg.start(partial(serve, receiver, host="127.0.0.1", port=0))
        config_path = tmp_path / "gateway.toml"
        config_path.write_text(config_text(tmp_path, amqp_url, erp, receiver, port))
        gateway = Gateway(load(config_path), clock=clock_from(T0))
        http = httpx.AsyncClient(timeout=10)
        async with http, anyio.create_task_group() as running:
            await running.start(gateway.run)
            http.base_url = httpx.URL(f"http://127.0.0.1:{gateway.http_port}")
            await until(lambda: all(c.statistics().consuming for c in gateway.erp_consumers))
            # The ERP releases the order; the supplier's order desk receives it.
            await erp.publish(amqp_url, encode_document(po), "erp-po-31")
            with anyio.fail_after(20):
                while not receiver.delivered():
                    await anyio.sleep(0.05)
            await until_status(gateway, po.po_number, "sent")
            # acme acks line 1 at 13 of 12: beyond its 5 % tolerance.
            await post(http, ACME, ack(po, quantities={1: D(13)}))
            await until_status(gateway, po.po_number, "acknowledged")
            # Two ASNs split the shipment.
            await post(http, ACME, asn("ASN-31-1", po, {1: D(12), 2: D(10)}))
            await post(http, ACME, asn("ASN-31-2", po, {2: D(14), 3: D(36)}))
            # The warehouse receives the first ASN one unit short on line 1.
            await post(
                http,
                GLOBEX,
                receipt(
                    "GR-31-1", po, {1: (D(12), D(11)), 2: (D(10), D(10))}, asn_number="ASN-31-1"
                ),
            )
            await until_status(gateway, po.po_number, "received")
            # acme bills line 2 above the ordered 12.50.
            await post(http, ACME, invoice("INV-31-1", po, {2: (D(10), D("13.00"))}))
            await until_status(gateway, po.po_number, "invoiced")

            at_erp = [decode_envelope(m.body) for m in await drain(erp_queue, expect=9)]
            at_warehouse = [decode_envelope(m.body) for m in await drain(warehouse_queue, expect=2)]
            admin = f"http://127.0.0.1:{gateway.admin_port}"
            api = (await http.get(f"{admin}/purchase-orders/distco/{po.po_number}")).json()
            missing = await http.get(f"{admin}/purchase-orders/distco/PO-NONE")
            metrics = (await http.get(f"{admin}/metrics")).text
            printed = await anyio.to_thread.run_sync(partial(trace_cli, config_path, po.po_number))
            gateway.stop()
        tg.cancel_scope.cancel()  # the order desk

    # The ERP's side: the ack, the exception, the discrepancy, the held match, the statuses.
    kinds = [e.document_type for e in at_erp]
    assert kinds.count("purchase_order_ack") == 1
    (exception,) = [e.document for e in at_erp if isinstance(e.document, ExceptionNotice)]
    assert (exception.kind, exception.line_number) == ("quantity_discrepancy", 1)
    (discrepancy,) = [e.document for e in at_erp if isinstance(e.document, ReceiptDiscrepancy)]
    assert [(g.po_line_number, g.short_quantity) for g in discrepancy.lines] == [(1, D(1))]
    (match,) = [e.document for e in at_erp if isinstance(e.document, InvoiceMatch)]
    assert match.result == "held"
    assert [i.reason for i in match.issues] == ["price"]
    statuses = [e.document.status for e in at_erp if e.document_type == "purchase_order_status"]  # type: ignore[union-attr]
    assert statuses == ["sent", "acknowledged", "shipped", "received", "invoiced"]
    # Every event carries the thread's one correlation id (the order's).
    events = [e for e in at_erp if e.document_type != "purchase_order_ack"]
    assert len({e.correlation_id for e in events + at_warehouse}) == 1
    # The warehouse's side: one inbound shipment per ASN.
    assert [
        e.document.asn_number for e in at_warehouse if isinstance(e.document, InboundShipment)
    ] == [
        "ASN-31-1",
        "ASN-31-2",
    ]
    # The trace: every document and event in order, with hop latencies.
    (thread,) = api["threads"]
    inputs = [e["document_type"] for e in thread["entries"] if e["role"] == "input"]
    assert inputs == [
        "purchase_order",
        "purchase_order.delivered",
        "purchase_order_ack",
        "advance_ship_notice",
        "advance_ship_notice",
        "goods_receipt",
        "invoice",
    ]
    hops = {e["hop"]: e["hop_s"] for e in thread["entries"][1:]}
    assert hops["purchase_order.delivered -> purchase_order_ack"] > 0  # the supplier's ack
    assert all(hop >= 0 for hop in hops.values())
    assert thread["status"] == "invoiced"
    assert {x["kind"] for x in thread["exceptions"]} == {
        "quantity_discrepancy",
        "receipt_discrepancy",
        "invoice_mismatch",
    }
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert (
        'gateway_workflow_exceptions_total{kind="quantity_discrepancy",partner="acme"} 1.0'
        in metrics
    )
    assert 'gateway_workflow_invoice_matches_total{partner="acme",result="held"} 1.0' in metrics
    assert "gateway_workflow_ack_latency_seconds_count" in metrics
    lines = printed.splitlines()
    assert lines[0].startswith(f"thread acme/{po.po_number}")
    assert [line.split()[-4] for line in lines[2:] if " input " in line] == [
        "amqp",
        "delivery",
        "webhook",
        "webhook",
        "webhook",
        "webhook",
        "webhook",
    ]
    assert "quantity_discrepancy line 1" in printed
    print(printed)  # shown with -s: what an operator reads


async def until_status(gateway: Gateway, po_number: str, status: str) -> None:
    assert gateway.store is not None
    store = gateway.store

    async def reached() -> bool:
        rows = await store.workflow.threads_of_order(po_number)
        return bool(rows) and rows[0].status == status

    with anyio.fail_after(20):
        while not await reached():
            await anyio.sleep(0.05)


def trace_cli(config_path: Path, reference: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "trace", reference, "--config", str(config_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


async def test_documents_before_their_order_wait_for_it_or_become_an_exception(
    tmp_path: Path, amqp_url: str
) -> None:
    early, never = order(32), order(33)
    erp = Erp()
    receiver = Receiver(answering(then=OK))
    clock = ManualClock(T0)
    async with (
        anyio.create_task_group() as tg,
        queue_for(amqp_url, ("exception.*",)) as erp_queue,
    ):
        port = await tg.start(partial(serve, receiver, host="127.0.0.1", port=0))
        config_path = tmp_path / "gateway.toml"
        config_path.write_text(config_text(tmp_path, amqp_url, erp, receiver, port))
        gateway = Gateway(load(config_path), clock=clock)
        http = httpx.AsyncClient(timeout=10)
        async with http, anyio.create_task_group() as running:
            await running.start(gateway.run)
            assert gateway.workflow is not None
            clock.on_move = gateway.workflow.timers.wake
            http.base_url = httpx.URL(f"http://127.0.0.1:{gateway.http_port}")
            await until(lambda: all(c.statistics().consuming for c in gateway.erp_consumers))
            # An ack for an order not released yet, and an ASN for one that never will be.
            await post(http, ACME, ack(early, quantities={1: D(13)}))
            await post(http, ACME, asn("ASN-33-1", never, {1: D(12)}))
            await until_status(gateway, never.po_number, "awaiting_order")
            await until_status(gateway, early.po_number, "awaiting_order")
            before = await drain(erp_queue, expect=0)
            await erp.publish(amqp_url, encode_document(early), "erp-po-32")
            await until_status(gateway, early.po_number, "acknowledged")
            applied = [decode_envelope(m.body) for m in await drain(erp_queue, expect=1)]
            clock.advance(25 * 3600)  # past park_hours (24): the ASN stops waiting
            expired = [decode_envelope(m.body) for m in await drain(erp_queue, expect=1)]
            gateway.stop()
        tg.cancel_scope.cancel()

    assert before == []
    assert [(e.document.kind, e.document.po_number) for e in applied] == [  # type: ignore[union-attr]
        ("quantity_discrepancy", early.po_number)
    ]
    assert [(e.document.kind, e.document.po_number) for e in expired] == [  # type: ignore[union-attr]
        ("unknown_purchase_order", never.po_number)
    ]
