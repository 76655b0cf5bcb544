"""`gateway demo`: a RabbitMQ node, the gateway and two scripted partners, end to end.

Inbound: the partners sign their webhooks with the `standardwebhooks` reference package,
exactly as a partner's own system would; a consumer bound to the events exchange prints each
canonical message as RabbitMQ delivers it. Outbound: the ERP releases a purchase order on its
exchange; the gateway routes it to its supplier, acme, whose order desk (a small server here)
receives it as a signed webhook and verifies it. Then that order's thread plays to its end
(gateway/demo_thread.py): an ack beyond tolerance, two ASNs, a receipt one short, an invoice
above the price, and the thread's trace. Everything runs on loopback under a temporary folder.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from functools import partial
from pathlib import Path

import aio_pika
import anyio
import httpx
import msgspec
import orjson
import standardwebhooks

from canonical import (
    PurchaseOrder,
    decode_envelope,
    encode_document,
    new_message_id,
    sample_body,
)
from gateway.app import Gateway
from gateway.config import AmqpUrl, GatewayConfig, Secret, load_config
from gateway.config.delivery import WebhookOutbound
from gateway.config.erp import ErpConsumer, ErpSettings, Subscription
from gateway.demo_thread import dated_order, play_thread
from gateway.localbroker import LocalRabbitMQ
from gateway.logs import configure_logging
from protocols.http.asgi import Receive, Scope, Send, read_body, send_response
from protocols.http.server import serve

__all__ = ["run_demo"]

EXAMPLE_CONFIG = Path(__file__).parent / "examples" / "demo.toml"
ERP_EXCHANGE = "erp.events"

# (partner, document type, sample number): what each scripted partner sends.
SCRIPT = [
    ("acme", "purchase_order_ack", 1),
    ("acme", "advance_ship_notice", 1),
    ("globex", "goods_receipt", 1),
    ("globex", "inventory_delta", 1),
    ("globex", "inventory_delta", 2),
    ("acme", "invoice", 1),
]


def run_demo(*, keep: bool = False) -> int:
    """Run the demo; with `keep`, leave everything running until Ctrl-C."""
    configure_logging("warning")
    with tempfile.TemporaryDirectory(prefix="gateway-demo-") as folder:
        base = Path(folder)
        node = LocalRabbitMQ(base / "rabbitmq")
        print(f"starting RabbitMQ node {node.nodename} on 127.0.0.1:{node.port} ...")
        node.start()
        try:
            anyio.run(_demo, base, node.url, keep, backend_options={"use_uvloop": True})
        finally:
            node.destroy()
    return 0


def _demo_config(base: Path, amqp_url: str, desk: OrderDesk, desk_port: int) -> GatewayConfig:
    """The example config on free ports, plus the ERP feed and acme's order desk."""
    config = load_config(EXAMPLE_CONFIG, {})
    replace = msgspec.structs.replace
    partners = tuple(
        replace(
            p,
            outbound=WebhookOutbound(
                url=f"http://127.0.0.1:{desk_port}/orders",
                secret=desk.secret,
                allow_networks=("127.0.0.0/8",),  # loopback is refused unless named
            ),
        )
        if p.id == "acme"
        else p
        for p in config.partners
    )
    erp = ErpSettings(
        consumers=(
            ErpConsumer(
                queue="demo.erp-orders",
                exchange=ERP_EXCHANGE,
                bindings={"purchase_order.released": "purchase_order"},
            ),
        ),
        subscriptions=(
            Subscription(
                partner="acme",
                document="purchase_order",
                match={"supplier.party_id": "{partner}"},
            ),
        ),
    )
    return replace(
        config,
        http=replace(config.http, port=0),
        admin=replace(config.admin, port=0),
        store=replace(config.store, path=str(base / "gateway.db")),
        amqp=replace(config.amqp, url=AmqpUrl(amqp_url, source="demo node")),
        partners=partners,
        erp=erp,
    )


class OrderDesk:
    """Acme's webhook endpoint: verifies each delivery with standardwebhooks, answers 200."""

    def __init__(self) -> None:
        self.secret = Secret.generate()
        self.received = anyio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive, limit=1 << 24)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        try:
            standardwebhooks.Webhook(self.secret.reveal()).verify(body, headers)
            verdict = "signature verified"
        except standardwebhooks.WebhookVerificationError:
            verdict = "SIGNATURE INVALID"
        envelope = decode_envelope(body)
        print(
            f"  acme order desk <- POST {scope['path']} webhook-id={headers['webhook-id']} "
            f"({verdict}): {envelope.document_type} "
            f"{getattr(envelope.document, 'po_number', '')} from {envelope.partner_id}"
        )
        await send_response(send, 200, [(b"content-type", b"text/plain")], b"ok")
        self.received.set()


async def _demo(base: Path, amqp_url: str, keep: bool) -> None:
    desk = OrderDesk()
    async with anyio.create_task_group() as tg:
        desk_port = await tg.start(partial(serve, desk, host="127.0.0.1", port=0))
        config = _demo_config(base, amqp_url, desk, desk_port)
        gateway = Gateway(config)
        await tg.start(gateway.run)
        print(
            f"gateway: webhooks on http://127.0.0.1:{gateway.http_port}/webhooks/{{partner}}/"
            f"{{document}}, admin on http://127.0.0.1:{gateway.admin_port}"
        )
        connection = await aio_pika.connect(config.amqp.url.reveal())
        async with connection, httpx.AsyncClient(timeout=10) as http:
            channel = await connection.channel()
            exchange = await channel.declare_exchange(
                config.amqp.events_exchange, "topic", durable=True
            )
            queue = await channel.declare_queue("demo.erp-tap", exclusive=True)
            await queue.bind(exchange, "#")
            expected = await _partners_post(config, gateway, http)
            print(f"\nconsumer on queue {queue.name!r} (bound to {exchange.name} '#'):")
            await _print_messages(queue, expected)
            order = dated_order(42, "acme", dt.datetime.now(dt.UTC).date())
            await _erp_releases_an_order(connection, gateway, desk, order)
            assert gateway.store is not None  # running
            await play_thread(
                order,
                http=http,
                webhooks_url=f"http://127.0.0.1:{gateway.http_port}/webhooks",
                sign=partial(_signed_now, config),
                store=gateway.store,
                store_path=config.store.path,
                tap=queue,
            )
            await _print_metrics(http, gateway)
        if keep:
            print("\nrunning; Ctrl-C to stop")
            await anyio.sleep_forever()
        gateway.stop()
        tg.cancel_scope.cancel()


async def _partners_post(config: GatewayConfig, gateway: Gateway, http: httpx.AsyncClient) -> int:
    """Post the script's documents, a retry and a bad document; return how many were new."""
    url = f"http://127.0.0.1:{gateway.http_port}/webhooks"
    print("\npartners post signed webhooks:")
    accepted = 0
    for partner_id, document, n in SCRIPT:
        body = sample_body(document, n, supplier=partner_id)
        headers = _signed(config, partner_id, body, f"msg_{new_message_id()}")
        response = await http.post(f"{url}/{partner_id}/{document}", content=body, headers=headers)
        accepted += response.status_code == 202
        print(f"  {partner_id:7} {document:22} -> {response.status_code} {response.text}")
        if document == "advance_ship_notice":
            again = await http.post(f"{url}/{partner_id}/{document}", content=body, headers=headers)
            print(
                f"  {partner_id:7} {document:22} -> {again.status_code} (retry of the same "
                f"webhook-id; Idempotent-Replayed: {again.headers.get('idempotent-replayed')})"
            )
    bad = orjson.loads(sample_body("goods_receipt", 3, supplier="globex"))
    bad["lines"][0]["received_quantity"] = "-1"
    bad["receipt_number"] = 42
    body = orjson.dumps(bad)
    response = await http.post(
        f"{url}/globex/goods_receipt",
        content=body,
        headers=_signed(config, "globex", body, f"msg_{new_message_id()}"),
    )
    problem = response.json()
    print(
        f"  globex  goods_receipt (invalid)  -> {response.status_code} {problem['title']}: "
        + "; ".join(f"{e['path']} {e['message']}" for e in problem.get("errors", []))
    )
    return accepted


def _signed_now(config: GatewayConfig, partner_id: str, body: bytes) -> dict[str, str]:
    return _signed(config, partner_id, body, f"msg_{new_message_id()}")


def _signed(config: GatewayConfig, partner_id: str, body: bytes, msg_id: str) -> dict[str, str]:
    partner = config.partner(partner_id)
    assert partner is not None  # the demo's own config names both partners
    webhook = standardwebhooks.Webhook(partner.secrets[-1].reveal())
    now = dt.datetime.now(dt.UTC)
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": webhook.sign(msg_id, now, body.decode()),
    }


async def _print_messages(queue: aio_pika.abc.AbstractQueue, expected: int) -> None:
    received = 0
    with anyio.move_on_after(15):
        async with queue.iterator() as messages:
            async for message in messages:
                async with message.process():
                    envelope = decode_envelope(message.body)
                    received += 1
                    print(
                        f"  {message.routing_key:32} message_id={envelope.message_id} "
                        f"correlation_id={envelope.correlation_id[:13]}... "
                        f"schema v{envelope.schema_version}, {len(message.body)} bytes"
                    )
                if received == expected:
                    break
    print(f"  {received} of {expected} accepted messages received")


async def _erp_releases_an_order(
    connection: aio_pika.abc.AbstractConnection,
    gateway: Gateway,
    desk: OrderDesk,
    order: PurchaseOrder,
) -> None:
    """The ERP publishes a released PO; acme's order desk receives it, signed."""
    print(f"\nthe ERP releases a purchase order on exchange {ERP_EXCHANGE!r}:")
    with anyio.fail_after(15):
        # The consumer declares and binds its queue once connected; until then the ERP's
        # publish would be unroutable. A demo may poll; the consumer exposes no event.
        while not all(c.statistics().consuming for c in gateway.erp_consumers):  # noqa: ASYNC110
            await anyio.sleep(0.05)
    channel = await connection.channel()
    exchange = await channel.get_exchange(ERP_EXCHANGE)
    body = encode_document(order)
    await exchange.publish(
        aio_pika.Message(
            body,
            message_id="erp-po-42",
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        ),
        routing_key="purchase_order.released",
    )
    print("  erp -> purchase_order.released message_id=erp-po-42")
    with anyio.move_on_after(15):
        await desk.received.wait()
    if not desk.received.is_set():
        print("  acme order desk received nothing within 15 s")
    await anyio.sleep(0.5)  # let the courier record the 200 before the metrics are read


async def _print_metrics(http: httpx.AsyncClient, gateway: Gateway) -> None:
    admin = f"http://127.0.0.1:{gateway.admin_port}"
    ready = await http.get(f"{admin}/readyz")
    print(f"\nadmin: /readyz -> {ready.status_code} {ready.text}")
    print("metrics (from /metrics):")
    wanted = (
        "gateway_requests_total",
        "gateway_store_commit_batch_size_count",
        "gateway_relay_confirmed_total",
        "gateway_outbox_backlog",
        "gateway_deliveries_total",
        "gateway_workflow_exceptions_total",
        "gateway_workflow_invoice_matches_total",
    )
    for line in (await http.get(f"{admin}/metrics")).text.splitlines():
        if line.startswith(wanted):
            print(f"  {line}")
