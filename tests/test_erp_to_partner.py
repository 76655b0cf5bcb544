"""The other half end to end: the ERP publishes on AMQP, the supplier's endpoint gets a webhook.

A plain aio-pika client (not the gateway's code) publishes a released purchase order on the
ERP exchange; the running gateway keeps it, routes it to its supplier and POSTs it, signed,
to the supplier's endpoint, a real server on loopback that verifies with `standardwebhooks`.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import pytest
from delivery_receiver import OK, Receiver, answering, order_desk
from gatewaykit import consuming, erp_supplier, load
from test_erp_ingress_gateway import Erp

from canonical import decode_envelope, sample_body

pytestmark = [pytest.mark.anyio, pytest.mark.rabbitmq]


async def test_erp_purchase_order_reaches_the_supplier_once_signed(
    tmp_path: Path, amqp_url: str
) -> None:
    erp = Erp()
    receiver = Receiver(answering(then=OK))
    body = sample_body("purchase_order", 11, supplier="acme")
    async with (
        order_desk(receiver) as desk,
        consuming(load(erp_supplier(tmp_path, amqp_url, erp, desk))) as gateway,
    ):
        await erp.publish(amqp_url, body, "erp-po-11")
        await erp.publish(amqp_url, body, "erp-po-11")  # the ERP's own retry
        with anyio.fail_after(20):
            while not receiver.delivered():
                await anyio.sleep(0.05)
        await anyio.sleep(1.0)  # a second delivery, if there were one, would show by now
        admin = f"http://127.0.0.1:{gateway.admin_port}"
        async with httpx.AsyncClient(timeout=10) as http:
            ready = (await http.get(f"{admin}/readyz")).json()
            metrics = (await http.get(f"{admin}/metrics")).text

    assert len(receiver.calls) == 1
    call = receiver.calls[0]
    assert call.verified
    envelope = decode_envelope(call.body)
    assert envelope.message_id == call.message_id  # webhook-id = the canonical message id
    assert envelope.causation_id == "erp-po-11"
    assert envelope.document.supplier.party_id == "acme"
    assert ready["checks"]["erp"] is True
    assert "gateway_erp_accepted_total 1.0" in metrics
    assert "gateway_erp_replayed_total 1.0" in metrics  # the ERP's retry, deduplicated
    assert 'gateway_deliveries_total{outcome="delivered",partner="acme"} 1.0' in metrics
