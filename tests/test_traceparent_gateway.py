"""A W3C trace crosses the gateway: webhook -> AMQP message, ERP message -> supplier webhook.

And ERP message -> the supplier's AMQP exchange (`outbound_amqp`), where the header is the
envelope's as kept.

Real RabbitMQ and a real receiver on loopback; the test's own aio-pika client reads and
publishes, so the headers checked are the ones on the wire.
"""

from __future__ import annotations

from pathlib import Path

import aio_pika
import pytest
from configkit import outbound_amqp
from delivery_receiver import OK, Receiver, answering, order_desk
from gatewaykit import (
    Partner,
    bound_queue,
    client,
    consuming,
    drain,
    erp_supplier,
    load,
    running,
    write_config,
)
from test_delivery_amqp import fresh_exchange, partner_queue
from test_erp_ingress_gateway import Erp, until

from canonical import decode_envelope, sample_body

pytestmark = [pytest.mark.anyio, pytest.mark.rabbitmq]

ACME = Partner("acme")
TRACE = "0af7651916cd43dd8448eb211c80319c"
SENT = f"00-{TRACE}-b7ad6b7169203331-01"


@pytest.mark.parametrize(
    ("sent", "published"),
    [
        (SENT, SENT),
        (f"01-{TRACE}-b7ad6b7169203331-01-later", SENT),  # a later version, read as 00
        ("not-a-traceparent", None),  # ignored: the webhook is still accepted, untraced
        (None, None),
    ],
)
async def test_a_webhooks_traceparent_comes_out_on_the_message_on_the_queue(
    tmp_path: Path, amqp_url: str, sent: str | None, published: str | None
) -> None:
    config = load(write_config(tmp_path, amqp_url, [ACME]))
    body = sample_body("purchase_order", 3)
    headers = ACME.headers(body)
    if sent is not None:
        headers["traceparent"] = sent
    async with bound_queue(amqp_url, "test.traceparent.in", "purchase_order.acme") as queue:
        async with running(config) as gateway, client(gateway) as http:
            response = await http.post(
                "/webhooks/acme/purchase_order", content=body, headers=headers
            )
            assert response.status_code == 202
            messages = await drain(queue, expect=1)

    assert len(messages) == 1
    assert (messages[0].headers or {}).get("traceparent") == published
    assert decode_envelope(messages[0].body).traceparent == published


async def publish_traced(erp: Erp, url: str, body: bytes, traceparent: str) -> None:
    """Publish a released PO as an ERP would, with a `traceparent` header."""
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(erp.exchange)
        await exchange.publish(
            aio_pika.Message(
                body,
                message_id="erp-po-traced",
                content_type="application/json",
                headers={"traceparent": traceparent},
            ),
            routing_key="purchase_order.released",
        )


async def test_an_erp_messages_traceparent_continues_on_the_webhook_to_the_supplier(
    tmp_path: Path, amqp_url: str
) -> None:
    erp = Erp()
    receiver = Receiver(answering(then=OK))
    body = sample_body("purchase_order", 12, supplier="acme")
    async with (
        order_desk(receiver) as desk,
        consuming(load(erp_supplier(tmp_path, amqp_url, erp, desk))),
    ):
        await publish_traced(erp, amqp_url, body, SENT)
        await until(lambda: bool(receiver.delivered()), timeout=20)

    call = receiver.calls[0]
    assert call.verified
    assert decode_envelope(call.body).traceparent == SENT  # the ERP's, kept with the message
    assert call.traceparent is not None
    version, trace_id, parent_id, flags = call.traceparent.split("-")
    # The same trace, continued under this hop's own span id.
    assert (version, trace_id, flags) == ("00", TRACE, "01")
    assert parent_id not in ("b7ad6b7169203331", "0" * 16)


async def test_an_erp_messages_traceparent_is_a_header_on_the_suppliers_amqp_message(
    tmp_path: Path, amqp_url: str
) -> None:
    erp, exchange = Erp(), fresh_exchange()
    path = erp_supplier(tmp_path, amqp_url, erp, outbound_amqp(exchange))
    body = sample_body("purchase_order", 13, supplier="acme")
    async with (
        partner_queue(amqp_url, exchange, "purchase_order.acme") as queue,
        consuming(load(path)),
    ):
        await publish_traced(erp, amqp_url, body, SENT)
        got = await drain(queue, expect=1, timeout=20)

    assert len(got) == 1
    assert (got[0].headers or {}).get("traceparent") == SENT
