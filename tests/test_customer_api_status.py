"""Order status through the running gateway: buffered at first, moved on by the status a
logistics source reports, the last milestone with `stale: true` once the source goes quiet."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aio_pika
import anyio
import httpx
import pytest
from customer_api_support import LOGISTICS, api_client, order_body, write_api_config
from gatewaykit import load

from canonical import encode_document
from canonical.sales import OrderState, OrderStatus
from gateway.app import Gateway
from gateway.config import GatewayConfig

pytestmark = pytest.mark.anyio

STALE_AFTER_S = 600.0


class Clock:
    """The gateway's clock: the real one, moved on by the test instead of waiting."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@asynccontextmanager
async def running_on(config: GatewayConfig, clock: Clock) -> AsyncIterator[Gateway]:
    gateway = Gateway(config, clock=clock)
    async with anyio.create_task_group() as tg:
        await tg.start(gateway.run)
        try:
            yield gateway
        finally:
            gateway.stop()


async def report(
    gateway: Gateway, order_id: str, status: OrderState, at: dt.datetime, **extra: str
) -> None:
    """The logistics source's webhook: one order_status document."""
    body = encode_document(OrderStatus(order_id=order_id, status=status, changed_at=at, **extra))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.http_port}") as http:
        answer = await http.post(
            f"/webhooks/{LOGISTICS.id}/order_status", content=body, headers=LOGISTICS.headers(body)
        )
    assert answer.status_code == 202, answer.text


async def status_becomes(http: httpx.AsyncClient, order_id: str, status: str) -> dict[str, object]:
    """Poll the status resource until it shows `status` (bounded)."""
    with anyio.fail_after(15):
        while True:
            answer = await http.get(f"/orders/{order_id}")
            assert answer.status_code == 200
            if answer.json()["status"] == status:
                return dict(answer.json())
            await anyio.sleep(0.05)


async def test_an_order_is_buffered_until_a_source_reports_it_then_stale_when_quiet(
    tmp_path: Path, amqp_url: str
) -> None:
    clock = Clock()
    config = load(write_api_config(tmp_path, amqp_url, stale_after_s=STALE_AFTER_S))
    shipped_at = dt.datetime(2026, 12, 1, 15, 30, tzinfo=dt.UTC)
    async with running_on(config, clock) as gateway, api_client(gateway) as http:
        accepted = await http.post("/orders", json=order_body(1), headers={"idempotency-key": "s1"})
        order_id = accepted.json()["order_id"]
        at_first = (await http.get(f"/orders/{order_id}")).json()
        await report(gateway, order_id, "confirmed", shipped_at - dt.timedelta(hours=5))
        await report(
            gateway,
            order_id,
            "shipped",
            shipped_at,
            milestone="picked up",
            carrier_scac="ODFL",
            tracking_number="BOL1",
        )
        fresh = await status_becomes(http, order_id, "shipped")
        # The source goes quiet for longer than the staleness bound.
        clock.offset += STALE_AFTER_S + 1
        quiet = await http.get(f"/orders/{order_id}")

    assert (at_first["status"], at_first["stale"]) == ("buffered", False)
    assert fresh["stale"] is False
    assert fresh["as_of"] == "2026-12-01T15:30:00Z"
    assert quiet.status_code == 200
    assert quiet.json()["status"] == "shipped"
    assert quiet.json()["stale"] is True
    assert quiet.json()["as_of"] == fresh["as_of"]
    assert [m["status"] for m in quiet.json()["milestones"]] == ["buffered", "confirmed", "shipped"]
    assert quiet.json()["milestones"][-1]["carrier_scac"] == "ODFL"


async def test_a_late_report_older_than_the_status_shown_does_not_move_it_back(
    tmp_path: Path, amqp_url: str
) -> None:
    config = load(write_api_config(tmp_path, amqp_url))
    at = dt.datetime(2026, 12, 1, 15, 30, tzinfo=dt.UTC)
    async with running_on(config, Clock()) as gateway, api_client(gateway) as http:
        accepted = await http.post("/orders", json=order_body(1), headers={"idempotency-key": "s2"})
        order_id = accepted.json()["order_id"]
        await report(gateway, order_id, "delivered", at)
        await status_becomes(http, order_id, "delivered")
        await report(gateway, order_id, "allocated", at - dt.timedelta(days=1))
        # The late report is kept as a milestone, in the source's time order.
        with anyio.fail_after(15):
            while len((shown := (await http.get(f"/orders/{order_id}")).json())["milestones"]) < 3:
                await anyio.sleep(0.05)

    assert shown["status"] == "delivered"
    assert [m["status"] for m in shown["milestones"]][-2:] == ["allocated", "delivered"]


async def test_the_erps_order_status_from_its_queue_confirms_the_order(
    tmp_path: Path, amqp_url: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    exchange, queue = f"test.erp.{tag}", f"test.gateway-erp.{tag}"
    erp = f"""
[[erp.consumers]]
queue = "{queue}"
exchange = "{exchange}"
bindings = {{ "order.status" = "order_status" }}
"""
    config = load(write_api_config(tmp_path, amqp_url, erp=erp))
    async with running_on(config, Clock()) as gateway, api_client(gateway) as http:
        accepted = await http.post("/orders", json=order_body(1), headers={"idempotency-key": "e1"})
        order_id = accepted.json()["order_id"]
        with anyio.fail_after(30):  # the gateway's queue is bound once its consumer consumes
            while not all(c.statistics().consuming for c in gateway.erp_consumers):
                await anyio.sleep(0.05)
        status = OrderStatus(
            order_id=order_id,
            status="confirmed",
            changed_at=dt.datetime(2026, 12, 2, 9, 0, tzinfo=dt.UTC),
            erp_order_number="SO0004711",
        )
        async with await aio_pika.connect(amqp_url) as connection:
            channel = await connection.channel()
            await (await channel.get_exchange(exchange)).publish(
                aio_pika.Message(
                    encode_document(status),
                    message_id=f"erp-{tag}",
                    content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key="order.status",
            )
        shown = await status_becomes(http, order_id, "confirmed")

    assert shown["as_of"] == "2026-12-02T09:00:00Z"
    assert shown["stale"] is False


async def test_an_order_of_no_account_is_404_problem_json(tmp_path: Path, amqp_url: str) -> None:
    config = load(write_api_config(tmp_path, amqp_url))
    async with running_on(config, Clock()) as gateway, api_client(gateway) as http:
        answer = await http.get("/orders/SO-000000000000000000000000")

    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
