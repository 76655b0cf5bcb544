"""One supervision mechanism in the running gateway: couriers, ERP consumers and the relay.

Each is a service of the actor runtime's supervisor: a crash is restarted after a backoff and
counted in `gateway_actor_restarts` (read from /metrics, as an operator would); crashes past
its budget escalate, and the gateway stops with an error naming what gave up, while what it
had accepted stays in the store; except a courier, which stops alone: one partner's bug must
not stop every partner's deliveries.
"""

from __future__ import annotations

import re
import sqlite3
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import aio_pika
import anyio
import httpx
import pytest
from delivery_receiver import Receiver, answering, deliveries_for, outbound_toml, serving
from gatewaykit import GatewayProcess, Partner, client, load, running, write_config

from actors.runtime import Escalation
from canonical import sample_body
from canonical.delivery import DeliveryRecord
from gateway.app import EXIT_ESCALATED, Gateway
from gateway.store.deliveries import DeliveryLedger

pytestmark = [pytest.mark.anyio, pytest.mark.rabbitmq]

ACME = Partner("acme")


def escalated(actor: str, match: str) -> pytest.RaisesGroup[Escalation]:
    """The group a stopped gateway raises: one escalation of `actor`, however nested."""
    return pytest.RaisesGroup(
        pytest.RaisesExc(Escalation, match=match, check=lambda e: e.actor == actor),
        flatten_subgroups=True,
    )


async def restarts(gateway: Gateway) -> float:
    """`gateway_actor_restarts` as /metrics shows it."""
    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(f"http://127.0.0.1:{gateway.admin_port}/metrics")).text
    found = re.search(r"^gateway_actor_restarts(?:_total)? (\S+)$", text, re.MULTILINE)
    assert found is not None, text
    return float(found.group(1))


async def until(condition: Callable[[], object], timeout: float = 30.0) -> None:
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.02)


def states(db: Path, table: str) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute(f"SELECT state FROM {table} ORDER BY rowid")]


class CrashingHeads:
    """The courier's store read, crashing (a bug, not a store outage) `times` times first."""

    def __init__(self, times: int, partner: str | None = None) -> None:
        self.times = times
        self.partner = partner  # only this partner's courier crashes; None: every one
        self.crashes: list[float] = []
        self._heads = DeliveryLedger.heads

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        crashing = self

        async def heads(
            ledger: DeliveryLedger, partner_id: str, limit: int
        ) -> list[DeliveryRecord]:
            mine = crashing.partner in (None, partner_id)
            if mine and len(crashing.crashes) < crashing.times:
                crashing.crashes.append(time.monotonic())
                raise RuntimeError("courier bug: heads unreadable")
            return await crashing._heads(ledger, partner_id, limit)

        monkeypatch.setattr(DeliveryLedger, "heads", heads)


async def test_a_crashing_courier_is_restarted_with_backoff_counted_and_then_delivers(
    tmp_path: Path, amqp_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = Receiver(answering())
    fault = CrashingHeads(times=2)
    fault.install(monkeypatch)
    async with serving(receiver) as url:
        path = write_config(
            tmp_path, amqp_url, [ACME], partner_extra=outbound_toml(url, receiver.secret)
        )
        async with running(load(path)) as gateway:
            assert gateway.store is not None
            assert gateway.outbound is not None
            acceptance = deliveries_for("acme", ["PO-1"])
            await gateway.store.accept(acceptance)
            gateway.outbound.wake("acme")
            await until(lambda: receiver.delivered())
            counted = await restarts(gateway)

    assert receiver.delivered() == [acceptance.deliveries[0].message_id]
    assert len(fault.crashes) == 2
    assert counted == 2
    # Paced by the courier budget's backoff: at least half of 0.5 s, then of 1 s (equal jitter).
    assert fault.crashes[1] - fault.crashes[0] >= 0.25


async def given_up(gateway: Gateway) -> float:
    """`gateway_services_given_up` as /metrics shows it."""
    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(f"http://127.0.0.1:{gateway.admin_port}/metrics")).text
    found = re.search(r"^gateway_services_given_up(?:_total)? (\S+)$", text, re.MULTILINE)
    assert found is not None, text
    return float(found.group(1))


async def test_a_courier_crashing_past_its_budget_stops_alone_and_keeps_its_delivery(
    tmp_path: Path, amqp_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = Receiver(answering())
    async with serving(receiver) as url:
        path = write_config(
            tmp_path,
            amqp_url,
            [ACME, Partner("beta")],
            extra="[runtime]\ncourier_max_restarts = 1\n",
            partner_extra=outbound_toml(url, receiver.secret),
        )
        fault = CrashingHeads(times=1_000, partner="acme")
        fault.install(monkeypatch)
        async with running(load(path)) as gateway:
            assert gateway.store is not None
            assert gateway.outbound is not None
            await gateway.store.accept(deliveries_for("acme", ["PO-1"]))
            gateway.outbound.wake("acme")
            await until(lambda: len(fault.crashes) == 2)  # the first run and one restart
            with anyio.fail_after(30):
                while await given_up(gateway) < 1:
                    await anyio.sleep(0.05)
            # The gateway runs on: another partner's delivery still goes out.
            beta = deliveries_for("beta", ["PO-2"])
            await gateway.store.accept(beta)
            gateway.outbound.wake("beta")
            await until(lambda: receiver.delivered())
            assert receiver.delivered() == [beta.deliveries[0].message_id]
            assert len(fault.crashes) == 2

    assert states(Path(load(path).store.path), "deliveries") == ["pending", "delivered"]


class WrongQueue:
    """The ERP queue declared beforehand as a classic queue: the consumer's quorum declare is
    refused with 406 PRECONDITION_FAILED, which no reconnect cures."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:8]
        self.exchange = f"test.supervision.erp.{tag}"
        self.queue = f"test.supervision.gateway-erp.{tag}"

    def toml(self) -> str:
        return (
            f'[erp]\nrequeue_delay_s = 0.1\n[[erp.consumers]]\nqueue = "{self.queue}"\n'
            f'exchange = "{self.exchange}"\n'
            'bindings = { "purchase_order.released" = "purchase_order" }\n'
        )

    async def declare(self, channel: aio_pika.abc.AbstractChannel) -> None:
        await channel.declare_queue(self.queue, durable=True)

    async def delete(self, channel: aio_pika.abc.AbstractChannel) -> None:
        await channel.queue_delete(self.queue)


async def test_an_erp_consumer_the_broker_refuses_is_restarted_counted_and_consumes_once_fixed(
    tmp_path: Path, amqp_url: str
) -> None:
    wrong = WrongQueue()
    path = write_config(
        tmp_path, amqp_url, [ACME], extra=wrong.toml() + "[runtime]\nmax_restarts = 1000\n"
    )
    async with await aio_pika.connect(amqp_url) as connection:
        channel = await connection.channel()
        await wrong.declare(channel)
        try:
            async with running(load(path)) as gateway:
                with anyio.fail_after(30):
                    while await restarts(gateway) < 2:
                        await anyio.sleep(0.05)
                await wrong.delete(channel)
                (consumer,) = gateway.erp_consumers
                await until(lambda: consumer.statistics().consuming)
                exchange = await channel.get_exchange(wrong.exchange)
                await exchange.publish(
                    aio_pika.Message(
                        sample_body("purchase_order", 1, supplier="acme"), message_id="po-1"
                    ),
                    routing_key="purchase_order.released",
                )
                await until(lambda: consumer.statistics().acked == 1)
        finally:
            await channel.queue_delete(wrong.queue)
            await channel.exchange_delete(wrong.exchange)


async def test_an_erp_consumer_failing_past_the_budget_exits_the_gateway_with_the_error(
    tmp_path: Path, amqp_url: str
) -> None:
    wrong = WrongQueue()
    path = write_config(
        tmp_path, amqp_url, [ACME], extra=wrong.toml() + "[runtime]\nmax_restarts = 2\n"
    )
    gateway = GatewayProcess(path, tmp_path / "gateway.log")
    async with await aio_pika.connect(amqp_url) as connection:
        channel = await connection.channel()
        await wrong.declare(channel)
        try:
            gateway.start()
            assert gateway.process is not None
            with anyio.fail_after(60):
                while (code := gateway.process.poll()) is None:
                    await anyio.sleep(0.05)
        finally:
            gateway.kill()
            await channel.queue_delete(wrong.queue)
            await channel.exchange_delete(wrong.exchange)

    log = gateway.log.read_text()
    assert code == EXIT_ESCALATED
    assert f"gateway stopped: actor 'erp-consumer/{wrong.queue}' crashed more than 2 times" in log
    assert "PRECONDITION_FAILED" in log


async def test_a_relay_failing_past_its_budget_stops_the_gateway_and_the_rows_wait(
    tmp_path: Path, amqp_url: str
) -> None:
    # The events exchange exists with another type: every relay start is refused (406).
    exchange = f"test.supervision.refused.{uuid.uuid4().hex[:8]}"
    path = write_config(tmp_path, amqp_url, [ACME], extra="[runtime]\nrelay_max_restarts = 2\n")
    path.write_text(
        path.read_text().replace("[amqp]\n", f'[amqp]\nevents_exchange = "{exchange}"\n')
    )
    counted = 0.0
    async with await aio_pika.connect(amqp_url) as connection:
        channel = await connection.channel()
        await channel.declare_exchange(exchange, "direct", durable=True)
        try:
            with escalated("relay", "gave up in the store's writer process"):
                async with running(load(path)) as gateway, client(gateway) as http:
                    body = sample_body("purchase_order", 1)
                    response = await http.post(
                        "/webhooks/acme/purchase_order", content=body, headers=ACME.headers(body)
                    )
                    assert response.status_code == 202, response.text
                    # The relay's restarts, in the writer process, reach the gateway's metric.
                    with anyio.fail_after(30):
                        while (counted := await restarts(gateway)) < 1:
                            await anyio.sleep(0.05)
                    await anyio.sleep_forever()
        finally:
            await channel.exchange_delete(exchange)

    assert counted >= 1
    assert states(tmp_path / "gateway.db", "outbox") == ["pending"]
