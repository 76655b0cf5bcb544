"""The bench's orders scenario: what it posts is an order the customer API takes, and the
check after the run finds every order answered 202 in the store exactly once.

The fast tests run the plumbing at tiny size: the bench gateway's config with the customer
API, the order body through the API's own decoding and checks, and `check_orders` over a real
store the gateway's order desk wrote. The slow one runs `python -m bench orders --quick` on the
gateway for real (RabbitMQ, wrk and its Lua script).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from bench.harness.documents import bench_partners
from bench.harness.gateway import BENCH_CUSTOMER, write_gateway_config
from bench.scenarios.orders import check_orders, order_body, write_orders_input
from gateway.config import check_config, load_config
from gateway.customer_api import StoreOrderDesk, accounts_of
from gateway.store import Store
from protocols.http.api import OrderRequest

REPO = Path(__file__).resolve().parents[1]


def test_bench_gateway_config_with_the_customer_api_passes_the_gateways_own_check(
    tmp_path: Path,
) -> None:
    config = write_gateway_config(
        tmp_path / "gateway.toml",
        http_port=18080,
        admin_port=19090,
        store_path=tmp_path / "gateway.db",
        amqp_url="amqp://guest:guest@127.0.0.1:5672/",
        partners=bench_partners(2),
        customer_api_port=18082,
    )

    code, lines = check_config(config, {})

    assert code == 0, lines
    loaded = load_config(config, {})
    assert loaded.customer_api is not None
    assert loaded.customer_api.port == 18082
    account = accounts_of(loaded).authenticate([(b"x-api-key", BENCH_CUSTOMER.api_key.encode())])
    assert account.id == BENCH_CUSTOMER.id


def test_bench_order_is_one_the_account_may_place() -> None:
    order = msgspec.json.decode(order_body(seq="0000000042"), type=OrderRequest)

    assert order.customer_po_number == "BCPO-0000000042"
    assert order.ship_to == BENCH_CUSTOMER.ship_to
    assert {line.sku for line in order.lines} <= set(BENCH_CUSTOMER.items)


def test_orders_input_splits_the_body_around_the_sequence_number(tmp_path: Path) -> None:
    path = write_orders_input(tmp_path / "input.lua", run="t", answered=tmp_path)

    text = path.read_text()

    assert text.startswith("return {")
    for field in ("run", "key", "head", "tail", "answered"):
        assert f"  {field} = " in text


@pytest.mark.anyio
async def test_the_check_finds_each_answered_order_in_the_store_once(tmp_path: Path) -> None:
    db = tmp_path / "gateway.db"
    answered = []
    async with Store(db) as store:
        desk = StoreOrderDesk(store, stale_after_s=3600)
        for n in range(3):
            body = order_body(seq=f"{n:010d}")
            order = msgspec.json.decode(body, type=OrderRequest)
            submitted = await desk.submit(BENCH_CUSTOMER.id, f"bench-t-{n}", body, order)
            first = json.loads(submitted.body)
            answered.append(f"{first['order_id']} {first['message_id']}\n")
    # Two answers seen by wrk (one thread's file), the third in flight when it stopped.
    (tmp_path / "answered-2-0.txt").write_text("".join(answered[:2]))

    check = check_orders(db, tmp_path, BENCH_CUSTOMER.id)

    assert (check.answered, check.in_store, check.in_outbox) == (2, 3, 3)
    assert check.not_once == 0
    assert check.unanswered_in_store == 1

    # An answer the store does not hold is caught.
    (tmp_path / "answered-2-1.txt").write_text("SO-not-there m-not-there\n")

    assert check_orders(db, tmp_path, BENCH_CUSTOMER.id).not_once == 1


@pytest.mark.slow
def test_quick_orders_run_checks_every_answered_order_in_the_store(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed")
    pytest.importorskip("matplotlib")

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "orders",
            "--quick",
            "--systems",
            "gateway-orders",
            "--results-dir",
            str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )

    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (result_file,) = tmp_path.glob("orders-*.json")
    (measured,) = json.loads(result_file.read_text())["systems"]
    assert measured["error"] is None
    figures = measured["figures"]
    assert figures["errors"] == 0
    assert figures["orders_answered"] == figures["accepted_total"] > 0
    assert figures["orders_not_once"] == 0
