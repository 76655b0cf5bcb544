"""Orders through the running gateway: 202 buffered while the ERP cannot take them, each on
the ERP's queue once when it can, the first answer replayed byte for byte."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import anyio
import httpx
import pytest
from customer_api_support import ACME_KEY, GLOBEX_KEY, api_client, order_body, write_api_config
from gatewaykit import bound_queue, load, running
from test_faults_gateway import collect, wait_drained

from canonical import SalesOrder
from gateway.localbroker import LocalRabbitMQ

pytestmark = pytest.mark.anyio

ORDERS = 1000
# Requests in flight at once from the test's client.
CONCURRENCY = 32
ERP_QUEUE = "test.erp.sales-orders"


async def submit_all(http: httpx.AsyncClient, keys: list[str]) -> dict[str, httpx.Response]:
    """POST one order per key, CONCURRENCY at a time; the answer per key."""
    answers: dict[str, httpx.Response] = {}
    limit = anyio.Semaphore(CONCURRENCY)

    async def one(n: int, key: str) -> None:
        async with limit:
            answers[key] = await http.post(
                "/orders", json=order_body(n), headers={"idempotency-key": key}
            )

    async with anyio.create_task_group() as tg:
        for n, key in enumerate(keys):
            tg.start_soon(one, n, key)
    return answers


def order_ids_on(seen: list[object]) -> Counter[str]:
    counted: Counter[str] = Counter()
    for envelope in seen:
        document = envelope.document  # type: ignore[attr-defined]
        assert isinstance(document, SalesOrder)
        counted[document.order_id] += 1
    return counted


async def test_orders_while_the_erp_consumes_nothing_are_buffered_then_on_its_queue_once(
    tmp_path: Path, amqp_url: str
) -> None:
    config = load(write_api_config(tmp_path, amqp_url))
    keys = [f"order-{n}" for n in range(ORDERS)]
    # The ERP's queue, bound but with no consumer: the ERP is down for maintenance.
    async with bound_queue(amqp_url, ERP_QUEUE, "sales_order.#"):
        async with running(config) as gateway, api_client(gateway) as http:
            answers = await submit_all(http, keys)
            await wait_drained(tmp_path / "gateway.db")
        async with bound_queue(amqp_url, ERP_QUEUE, "sales_order.#", delete=False) as queue:
            seen = await collect(queue)

    assert Counter(a.status_code for a in answers.values()) == {202: ORDERS}
    assert {a.json()["status"] for a in answers.values()} == {"buffered"}
    on_queue = order_ids_on(seen)
    assert set(on_queue) == {a.json()["order_id"] for a in answers.values()}
    assert set(on_queue.values()) == {1}  # each order once


async def test_orders_while_rabbitmq_is_down_are_kept_and_reach_the_queue_once_after(
    tmp_path: Path,
) -> None:
    node = LocalRabbitMQ(tmp_path / "node")
    await anyio.to_thread.run_sync(node.start)
    try:
        config = load(write_api_config(tmp_path, node.url))
        async with bound_queue(node.url, ERP_QUEUE, "sales_order.#", delete=False):
            pass  # durable: it outlives the broker's stop
        # FIELD-NOTES: a queue declared seconds before a kill may come back empty.
        await anyio.to_thread.run_sync(node.stop)
        await anyio.to_thread.run_sync(node.start)
        keys = [f"outage-{n}" for n in range(ORDERS)]
        async with running(config) as gateway, api_client(gateway) as http:
            await anyio.to_thread.run_sync(node.kill)
            answers = await submit_all(http, keys)
            # The customer's retries during the outage: the first answer, byte for byte.
            retried = await submit_all(http, keys[:100])
            # The status never waits on the broker or the ERP.
            during = await http.get(f"/orders/{answers[keys[0]].json()['order_id']}")
            await anyio.to_thread.run_sync(node.start)
            await wait_drained(tmp_path / "gateway.db", timeout=120)
        async with bound_queue(node.url, ERP_QUEUE, "sales_order.#", delete=False) as queue:
            seen = await collect(queue)
    finally:
        await anyio.to_thread.run_sync(node.destroy)

    assert Counter(a.status_code for a in answers.values()) == {202: ORDERS}
    assert {a.json()["status"] for a in answers.values()} == {"buffered"}
    assert all(retried[k].content == answers[k].content for k in retried)
    assert (during.status_code, during.json()["status"]) == (200, "buffered")
    assert {retried[k].headers["idempotent-replayed"] for k in retried} == {"true"}
    on_queue = order_ids_on(seen)
    assert set(on_queue) == {a.json()["order_id"] for a in answers.values()}
    assert set(on_queue.values()) == {1}


async def test_the_sales_order_carries_the_idempotency_key_and_the_order_to_the_erp(
    tmp_path: Path, amqp_url: str
) -> None:
    config = load(write_api_config(tmp_path, amqp_url))
    async with bound_queue(amqp_url, "test.erp.one-order", "sales_order.#") as queue:
        async with running(config) as gateway, api_client(gateway) as http:
            answer = await http.post(
                "/orders", json=order_body(7, ship_to="STORE-2"), headers={"idempotency-key": "k7"}
            )
            await wait_drained(tmp_path / "gateway.db")
        seen = await collect(queue)

    assert answer.status_code == 202
    assert answer.headers["location"] == f"/api/v1/orders/{answer.json()['order_id']}"
    [envelope] = seen
    assert envelope.idempotency_key == "k7"
    assert envelope.partner_id == "acme-retail"
    document = envelope.document
    assert isinstance(document, SalesOrder)
    assert (document.order_id, document.ship_to) == (answer.json()["order_id"], "STORE-2")
    assert [(line.sku, str(line.quantity.value)) for line in document.lines] == [
        ("SKU-1", "2"),
        ("SKU-2", "1"),
    ]


@pytest.mark.parametrize(
    ("headers", "body", "status", "reason"),
    [
        ({}, order_body(1), 400, "bad-request"),  # no Idempotency-Key
        ({"idempotency-key": "x" * 256}, order_body(1), 400, "bad-request"),
        ({"idempotency-key": "k"}, order_body(1, ship_to="GLOBEX-HQ"), 422, "invalid-document"),
        ({"idempotency-key": "k"}, {"ship_to": "STORE-1", "lines": []}, 422, "invalid-document"),
        (
            {"idempotency-key": "k"},
            {"ship_to": "STORE-1", "lines": [{"sku": "SKU-1", "quantity": "-1"}]},
            422,
            "invalid-document",
        ),
        (
            {"x-api-key": "not-a-key-of-anyone-at-all-x", "idempotency-key": "k"},
            order_body(1),
            401,
            "unauthenticated",
        ),
    ],
    ids=[
        "no-key",
        "key-too-long",
        "ship-to-of-another-account",
        "no-lines",
        "negative",
        "bad-api-key",
    ],
)
async def test_a_refused_order_is_problem_json_and_stores_nothing(
    tmp_path: Path,
    amqp_url: str,
    headers: dict[str, str],
    body: dict[str, object],
    status: int,
    reason: str,
) -> None:
    config = load(write_api_config(tmp_path, amqp_url))
    async with running(config) as gateway, api_client(gateway) as http:
        answer = await http.post("/orders", json=body, headers=headers)
        # Nothing was kept: the same key now takes a valid order.
        after = await http.post("/orders", json=order_body(1), headers={"idempotency-key": "k"})

    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"].endswith(reason)
    assert after.status_code == 202


async def test_the_same_key_with_another_body_is_422_and_the_first_order_stands(
    tmp_path: Path, amqp_url: str
) -> None:
    config = load(write_api_config(tmp_path, amqp_url))
    async with running(config) as gateway, api_client(gateway) as http:
        first = await http.post("/orders", json=order_body(1), headers={"idempotency-key": "k"})
        other = await http.post("/orders", json=order_body(2), headers={"idempotency-key": "k"})
        again = await http.post("/orders", json=order_body(1), headers={"idempotency-key": "k"})

    assert first.status_code == 202
    assert other.status_code == 422
    assert other.json()["type"].endswith("idempotency-key-reused")
    assert (again.status_code, again.content) == (202, first.content)
    assert again.headers["idempotent-replayed"] == "true"


async def test_a_key_is_scoped_to_its_account(tmp_path: Path, amqp_url: str) -> None:
    config = load(write_api_config(tmp_path, amqp_url))
    async with running(config) as gateway:
        async with api_client(gateway, ACME_KEY) as acme, api_client(gateway, GLOBEX_KEY) as globex:
            a = await acme.post("/orders", json=order_body(1), headers={"idempotency-key": "k"})
            g = await globex.post(
                "/orders", json=order_body(1, ship_to="GLOBEX-HQ"), headers={"idempotency-key": "k"}
            )
            theirs = await globex.get(f"/orders/{a.json()['order_id']}")

    assert (a.status_code, g.status_code) == (202, 202)
    assert a.json()["order_id"] != g.json()["order_id"]
    assert theirs.status_code == 404  # another account's order is no order at all


async def test_an_account_past_its_rate_limit_gets_429_with_retry_after(
    tmp_path: Path, amqp_url: str
) -> None:
    config = load(write_api_config(tmp_path, amqp_url, per_second=0.001, burst=2))
    async with running(config) as gateway, api_client(gateway) as http:
        answers = [
            await http.post("/orders", json=order_body(n), headers={"idempotency-key": f"r{n}"})
            for n in range(3)
        ]

    assert [a.status_code for a in answers][:2] == [202, 202]
    assert answers[2].status_code == 429
    assert json.loads(answers[2].content)["type"].endswith("rate-limited")
    assert int(answers[2].headers["retry-after"]) >= 0
