"""No queue bound to the events exchange: the gateway says so, and the dead letters replay.

Against a real RabbitMQ node: a real mandatory publish coming back 312 NO_ROUTE. Each test
publishes to an exchange of its own, so no queue another test bound can take its messages.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import aio_pika
import anyio
import httpx
import pytest
from gatewaykit import Partner, client, drain, load, running, write_config

from canonical import decode_envelope, sample_body
from gateway.config import GatewayConfig
from gateway.store import Store

pytestmark = pytest.mark.anyio

ACME = Partner("acme")
NO_BROKER = "amqp://guest:guest@127.0.0.1:9/"


def config_with_exchange(folder: Path, amqp_url: str, exchange: str) -> GatewayConfig:
    path = write_config(folder, amqp_url, [ACME])
    path.write_text(
        path.read_text().replace("[amqp]\n", f'[amqp]\nevents_exchange = "{exchange}"\n')
    )
    return load(path)


async def metric(admin: httpx.AsyncClient, line: str) -> None:
    """Wait (bounded) until /metrics shows `line`: the figures are sampled, not pushed."""
    with anyio.fail_after(15):
        while line not in (await admin.get("/metrics")).text:
            await anyio.sleep(0.05)


async def test_with_no_queue_bound_the_gateway_says_so_and_a_replay_delivers_once_bound(
    tmp_path: Path, amqp_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    exchange = f"test.unbound.{uuid.uuid4().hex[:8]}"
    config = config_with_exchange(tmp_path, amqp_url, exchange)
    body = sample_body("purchase_order", 3)
    caplog.set_level(logging.INFO, logger="gateway.unroutable")
    connection = await aio_pika.connect(amqp_url)
    async with connection, running(config) as gateway, client(gateway) as http:
        admin_url = f"http://127.0.0.1:{gateway.admin_port}"
        async with httpx.AsyncClient(base_url=admin_url, timeout=10) as admin:
            accepted = await http.post(
                "/webhooks/acme/purchase_order", content=body, headers=ACME.headers(body)
            )
            await metric(admin, "gateway_relay_unroutable_routing_keys 1.0")
            await metric(admin, 'gateway_dead_letters{source="relay"} 1.0')
            (letter,) = (await admin.get("/dead-letters", params={"source": "relay"})).json()[
                "dead_letters"
            ]
            unroutable = [r for r in caplog.records if r.levelno == logging.ERROR]

            # The operator binds a queue, as the README's quick start says, and replays.
            channel = await connection.channel()
            events = await channel.declare_exchange(exchange, "topic", durable=True)
            queue = await channel.declare_queue(exclusive=True)
            await queue.bind(events, "#")
            replayed = await admin.post("/dead-letters/replay", json={"source": "relay"})
            received = await drain(queue, expect=1)
            await metric(admin, "gateway_relay_unroutable_routing_keys 0.0")
            await metric(admin, 'gateway_dead_letters{source="relay"} 0.0')
            left = (await admin.get("/dead-letters")).json()["dead_letters"]
            await events.delete()

    assert accepted.status_code == 202
    assert letter["reason"] == "unroutable: 312 NO_ROUTE (routing key 'purchase_order.acme')"
    assert letter["message_id"] == accepted.json()["message_ids"][0]
    assert len(unroutable) == 1
    assert "purchase_order.acme" in unroutable[0].getMessage()
    assert exchange in unroutable[0].getMessage()
    assert replayed.json() == {"replayed": 1, "still_dead": 0, "not_replayable": 0}
    assert [decode_envelope(m.body).message_id for m in received] == [letter["message_id"]]
    assert left == []
    assert any("routed again" in r.getMessage() for r in caplog.records)


async def test_a_start_with_relay_dead_letters_in_the_store_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = config_with_exchange(tmp_path, NO_BROKER, "gateway.events")
    async with Store(config.store.path) as store:
        await store.dead_letter(
            source="relay", reason="unroutable: 312 NO_ROUTE", detail="", payload=b"{}"
        )
    caplog.set_level(logging.WARNING, logger="gateway.unroutable")
    async with running(config):
        pass

    (warning,) = [r for r in caplog.records if r.name == "gateway.unroutable"]
    assert warning.levelno == logging.WARNING
    assert "1 relay dead letter in the store" in warning.getMessage()
    assert "replay --source relay" in warning.getMessage()
