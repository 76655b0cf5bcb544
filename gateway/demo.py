"""`gateway demo`: a RabbitMQ node, the gateway and two scripted partners, end to end.

The partners sign their webhooks with the `standardwebhooks` reference package, exactly as a
partner's own system would; a consumer bound to the events exchange prints each canonical
message as RabbitMQ delivers it. Everything runs on loopback under a temporary folder.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import aio_pika
import anyio
import httpx
import msgspec
import orjson
import standardwebhooks

from canonical import decode_envelope, new_message_id, sample_body
from gateway.app import Gateway
from gateway.config import GatewayConfig, load_config
from gateway.localbroker import LocalRabbitMQ
from gateway.logs import configure_logging

__all__ = ["run_demo"]

EXAMPLE_CONFIG = Path(__file__).parent / "examples" / "demo.toml"

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
            config = _demo_config(base, node.url)
            anyio.run(_demo, config, keep, backend_options={"use_uvloop": True})
        finally:
            node.destroy()
    return 0


def _demo_config(base: Path, amqp_url: str) -> GatewayConfig:
    config = load_config(EXAMPLE_CONFIG, {})
    replace = msgspec.structs.replace
    return replace(
        config,
        http=replace(config.http, port=0),
        admin=replace(config.admin, port=0),
        store=replace(config.store, path=str(base / "gateway.db")),
        amqp=replace(config.amqp, url=amqp_url),
    )


async def _demo(config: GatewayConfig, keep: bool) -> None:
    gateway = Gateway(config)
    async with anyio.create_task_group() as tg:
        await tg.start(gateway.run)
        print(
            f"gateway: webhooks on http://127.0.0.1:{gateway.http_port}/webhooks/{{partner}}/"
            f"{{document}}, admin on http://127.0.0.1:{gateway.admin_port}"
        )
        connection = await aio_pika.connect(config.amqp.url)
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
            await _print_metrics(http, gateway)
        if keep:
            print("\nrunning; Ctrl-C to stop")
            await anyio.sleep_forever()
        gateway.stop()


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
        "gateway_actors_live",
    )
    for line in (await http.get(f"{admin}/metrics")).text.splitlines():
        if line.startswith(wanted):
            print(f"  {line}")
