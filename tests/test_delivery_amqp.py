"""The AMQP outbound channel against a real RabbitMQ: store -> courier -> the partner's exchange.

The partner's side is a plain aio-pika client (not the gateway's code): a queue bound to the
partner's exchange, read back after the courier settled its deliveries.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import anyio
import msgspec
import pytest
from configkit import outbound_amqp
from delivery_receiver import FAST_SCHEDULE, Outbound, deliveries_for
from gatewaykit import consuming, drain, erp_supplier, load
from test_erp_ingress_gateway import Erp

from canonical import decode_envelope, sample_body
from canonical.errors import ConfigError
from gateway.config import AmqpUrl, PartnerConfig, Secret, load_config
from gateway.config.delivery import AmqpOutbound
from gateway.config.settings import AmqpSettings
from gateway.localbroker import LocalRabbitMQ
from gateway.outbound import build_outbound
from gateway.store import Store
from protocols.http.egress import EgressClient

pytestmark = pytest.mark.anyio


@contextlib.asynccontextmanager
async def amqp_outbound(
    db: Path, amqp_url: str, exchange: str, **options: object
) -> AsyncIterator[Outbound]:
    """A store and acme's courier publishing to `exchange`, retrying fast, circuit closed."""
    settings = {
        "retry_schedule_s": FAST_SCHEDULE,
        "jitter": 0.0,
        "breaker_failures": 99,
        **options,
    }
    acme = PartnerConfig(
        id="acme",
        name="acme",
        secrets=(Secret.generate(),),
        outbound_amqp=AmqpOutbound(exchange=exchange, **settings),  # type: ignore[arg-type]
    )
    amqp = AmqpSettings(url=AmqpUrl(amqp_url), reconnect_min_s=0.05, reconnect_max_s=0.2)
    async with Store(str(db)) as store, EgressClient() as client, anyio.create_task_group() as tg:
        delivery = build_outbound([acme], store.deliveries, client, amqp=amqp, idle_wait_s=0.05)
        await tg.start(delivery.run)
        yield Outbound(store, delivery)
        tg.cancel_scope.cancel()


@contextlib.asynccontextmanager
async def partner_queue(
    amqp_url: str, exchange: str, key: str = "#"
) -> AsyncIterator[aio_pika.abc.AbstractQueue]:
    """The partner's side: a queue bound to its exchange (declared as the gateway does)."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        topic = await channel.declare_exchange(exchange, "topic", durable=True)
        queue = await channel.declare_queue(f"{exchange}.queue", exclusive=True)
        await queue.bind(topic, key)
        try:
            yield queue
        finally:
            await topic.delete()


def fresh_exchange() -> str:
    return f"acme.inbound.{uuid.uuid4().hex[:8]}"


@pytest.mark.rabbitmq
async def test_a_delivery_reaches_the_partners_queue_once_persistent_with_its_message_id(
    tmp_path: Path, amqp_url: str
) -> None:
    exchange = fresh_exchange()
    async with (
        partner_queue(amqp_url, exchange, "purchase_order.acme") as queue,
        amqp_outbound(tmp_path / "gw.db", amqp_url, exchange) as env,
    ):
        (message_id,) = await env.accept(deliveries_for("acme", ["PO-1"]))
        await env.until("acme", {"delivered"})
        got = await drain(queue, expect=1)

    assert [m.message_id for m in got] == [message_id]
    assert got[0].delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert got[0].routing_key == "purchase_order.acme"
    assert got[0].body == b'{"n": 0, "aggregate": "PO-1"}'


@pytest.mark.rabbitmq
async def test_the_routing_key_follows_the_partners_template(tmp_path: Path, amqp_url: str) -> None:
    exchange = fresh_exchange()
    async with (
        partner_queue(amqp_url, exchange, "orders.acme.purchase_order") as queue,
        amqp_outbound(
            tmp_path / "gw.db", amqp_url, exchange, routing_key="orders.{partner}.{document}"
        ) as env,
    ):
        (message_id,) = await env.accept(deliveries_for("acme", ["PO-1"]))
        await env.until("acme", {"delivered"})
        got = await drain(queue, expect=1)

    assert [m.message_id for m in got] == [message_id]


@pytest.mark.rabbitmq
async def test_an_unroutable_delivery_is_dead_at_once_with_the_no_route_reason(
    tmp_path: Path, amqp_url: str
) -> None:
    exchange = fresh_exchange()  # declared by the gateway, no queue bound to it
    async with amqp_outbound(tmp_path / "gw.db", amqp_url, exchange) as env:
        (message_id,) = await env.accept(deliveries_for("acme", ["PO-1"]))
        await env.until("acme", {"dead"})
        (dead,) = await env.store.deliveries.deliveries(partner_id="acme")
        attempts = await env.store.deliveries.attempts(dead.id)
        (letter,) = await env.store.dead_letters(source="delivery:acme")

    assert letter.message_id == message_id
    assert "312 NO_ROUTE" in (dead.reason or "")
    assert [a.status for a in attempts] == [312]
    assert msgspec.json.decode(letter.detail)["attempts"][0]["status"] == 312


@pytest.mark.rabbitmq
async def test_replaying_a_dead_delivery_publishes_the_same_message_id(
    tmp_path: Path, amqp_url: str
) -> None:
    exchange = fresh_exchange()
    async with amqp_outbound(tmp_path / "gw.db", amqp_url, exchange) as env:
        (message_id,) = await env.accept(deliveries_for("acme", ["PO-1"]))
        await env.until("acme", {"dead"})
        async with partner_queue(amqp_url, exchange) as queue:  # the partner binds a queue
            (dead,) = await env.store.deliveries.deliveries(partner_id="acme", state="dead")
            assert await env.store.deliveries.replay_delivery(dead.id)
            env.delivery.wake("acme")
            await env.until("acme", {"delivered"})
            got = await drain(queue, expect=1)

    assert [m.message_id for m in got] == [message_id]


@pytest.mark.rabbitmq
async def test_a_missing_exchange_not_declared_by_the_gateway_is_retried_until_it_exists(
    tmp_path: Path, amqp_url: str
) -> None:
    exchange = fresh_exchange()
    schedule = (0.2,) * 50  # long enough for the exchange to appear
    async with amqp_outbound(
        tmp_path / "gw.db", amqp_url, exchange, declare=False, retry_schedule_s=schedule
    ) as env:
        (message_id,) = await env.accept(deliveries_for("acme", ["PO-1"]))
        with anyio.fail_after(10):
            while not (await env.store.deliveries.deliveries(partner_id="acme"))[0].attempts:
                await anyio.sleep(0.02)
        async with partner_queue(amqp_url, exchange) as queue:
            await env.until("acme", {"delivered"})
            got = await drain(queue, expect=1)
        (delivery,) = await env.store.deliveries.deliveries(partner_id="acme")
        attempts = await env.store.deliveries.attempts(delivery.id)

    assert [m.message_id for m in got] == [message_id]
    assert attempts[0].status is None
    assert "refused" in (attempts[0].error or "")


@pytest.mark.rabbitmq
async def test_a_connection_closed_by_the_broker_is_reopened_for_the_next_delivery(
    tmp_path: Path, amqp_url: str, rabbitmq: LocalRabbitMQ
) -> None:
    exchange = fresh_exchange()
    queue_name = f"{exchange}.kept"
    async with await aio_pika.connect(amqp_url) as connection:  # closed before the kill
        channel = await connection.channel()
        topic = await channel.declare_exchange(exchange, "topic", durable=True)
        kept = await channel.declare_queue(queue_name, durable=True)
        await kept.bind(topic, "#")
    async with amqp_outbound(tmp_path / "gw.db", amqp_url, exchange) as env:
        first = await env.accept(deliveries_for("acme", ["PO-1"]))
        await env.until("acme", {"delivered"})
        await anyio.to_thread.run_sync(
            rabbitmq.ctl, "rabbitmqctl", "close_all_connections", "--global", "test"
        )
        second = await env.accept(deliveries_for("acme", ["PO-2"]))
        await env.until("acme", {"delivered"})
    async with await aio_pika.connect(amqp_url) as connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name, durable=True)
        got = await drain(queue, expect=2)
        await queue.delete(if_unused=False, if_empty=False)
        await channel.exchange_delete(exchange)

    # At least once: a publish lost with the connection may arrive twice, with one id.
    assert sorted({m.message_id for m in got}) == sorted(first + second)


@pytest.mark.rabbitmq
async def test_an_erp_purchase_order_is_published_to_the_suppliers_exchange_by_the_gateway(
    tmp_path: Path, amqp_url: str
) -> None:
    erp, exchange = Erp(), fresh_exchange()
    path = erp_supplier(tmp_path, amqp_url, erp, outbound_amqp(exchange))
    body = sample_body("purchase_order", 11, supplier="acme")
    async with (
        partner_queue(amqp_url, exchange, "purchase_order.acme") as queue,
        consuming(load(path)),
    ):
        await erp.publish(amqp_url, body, "erp-po-11")
        got = await drain(queue, expect=1, timeout=20)

    envelope = decode_envelope(got[0].body)
    assert [m.message_id for m in got] == [envelope.message_id]
    assert envelope.causation_id == "erp-po-11"
    assert envelope.document.supplier.party_id == "acme"


PARTNER = """
[[partners]]
id = "acme"
name = "Acme"
secrets = ["{secret}"]
"""


def test_a_partner_with_two_outbound_channels_is_a_config_error(tmp_path: Path) -> None:
    secret = Secret.generate().reveal()
    path = tmp_path / "gateway.toml"
    path.write_text(
        PARTNER.format(secret=secret)
        + f'[partners.outbound]\nurl = "https://hooks.acme.example/in"\nsecret = "{secret}"\n'
        + '[partners.outbound_amqp]\nexchange = "acme.inbound"\n'
    )

    with pytest.raises(ConfigError) as raised:
        load_config(path, {})

    assert "outbound_amqp: a partner has one outbound channel" in str(raised.value.errors)


def test_an_unknown_routing_key_placeholder_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(
        PARTNER.format(secret=Secret.generate().reveal())
        + '[partners.outbound_amqp]\nexchange = "acme.inbound"\nrouting_key = "{doc}.x"\n'
    )

    with pytest.raises(ConfigError) as raised:
        load_config(path, {})

    assert "unknown placeholder {doc}" in str(raised.value.errors)


def test_the_outbound_amqp_url_is_not_shown_in_the_config_repr() -> None:
    outbound = AmqpOutbound(
        exchange="acme.inbound", url=AmqpUrl("amqp://gw:hunter2@mq.acme.example/")
    )

    assert "hunter2" not in repr(outbound)
