"""orders: the customer API's order submission beside durable webhook ingest and the ceiling.

Three systems, one after the other in one run, each loaded by wrk the way ingest-burst loads
its systems (closed loop, `--connections`, `--threads`, `--duration` after a 2 s warm-up):
- `gateway-orders`: the gateway (`gateway run`, the bench config plus `[customer_api]` and one
  account, `BENCH_CUSTOMER`, ordering from a catalogue of SKUs) taking
  `POST /api/v1/orders`, each request a new order with its own `Idempotency-Key`
  (`bench/harness/orders.lua`): key check, body check against the catalogue and the account's
  ship-to, inbox record and `sales_order` outbox row in one group commit, then the order's
  status row, then 202; the relay publishes the orders meanwhile;
- `gateway`: the same gateway build's durable webhook ingest (signed purchase orders,
  ingest-burst's load);
- `http-ceiling`: ingest-burst's ceiling (the body read and decoded, 202).
Reported: orders/s over the gateway's webhook accepted/s and over the ceiling's, p50/p99, and
a check after the run: every order wrk saw answered 202 (the script writes each one's order
id and message id) is in the gateway's store exactly once: its status row with that message
id, and one `sales_order` outbox row for it. Orders committed but not answered in time (in
flight when wrk stopped) are counted apart, not as errors.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path

import msgspec

from bench.harness.gateway import BENCH_CUSTOMER, BenchCustomer
from bench.harness.results import SystemResult, ratio
from bench.harness.run import BenchRun, Scenario
from bench.harness.systems import SYSTEMS, RunningSystem
from bench.harness.wrk import lua_string
from bench.scenarios._shared import failed
from bench.scenarios.ingest_burst import COLUMNS as INGEST_COLUMNS
from bench.scenarios.ingest_burst import Target, measure

__all__ = ["SCENARIO", "OrderCheck", "check_orders", "order_body", "write_orders_input"]

ORDERS_SCRIPT = Path(__file__).resolve().parents[1] / "harness" / "orders.lua"
ORDERS_SYSTEM = "gateway-orders"
# The sequence number's place in the order body (the customer PO number), as in the POs.
_MARK = "#" * 10
# Lines per order: SKUs of the catalogue, quantities as strings (decimals).
LINES = 3
COLUMNS = (
    *INGEST_COLUMNS[:4],
    "orders_answered",
    "orders_not_once",
    "orders_unanswered_in_store",
    *INGEST_COLUMNS[4:],
)


def order_body(customer: BenchCustomer = BENCH_CUSTOMER, seq: str = _MARK) -> bytes:
    """An order of `customer`: its ship-to, `LINES` SKUs of its catalogue, PO number `seq`."""
    return json.dumps(
        {
            "ship_to": customer.ship_to,
            "customer_po_number": f"BCPO-{seq}",
            "lines": [
                {"sku": customer.items[n], "quantity": str(n + 1), "uom": "EA"}
                for n in range(LINES)
            ],
        },
        separators=(",", ":"),
    ).encode()


def write_orders_input(
    path: Path, *, run: str, answered: Path, customer: BenchCustomer = BENCH_CUSTOMER
) -> Path:
    """Write the Lua table `orders.lua` reads: run token, API key, body around the digits."""
    head, tail = order_body(customer).split(_MARK.encode())
    path.write_text(
        "return {\n"
        f"  run = {lua_string(run.encode())},\n"
        f"  key = {lua_string(customer.api_key.encode())},\n"
        f"  head = {lua_string(head)},\n"
        f"  tail = {lua_string(tail)},\n"
        f"  answered = {lua_string(str(answered).encode())},\n"
        "}\n"
    )
    return path


class OrderCheck(msgspec.Struct, frozen=True, kw_only=True):
    """The orders answered 202 against what the store holds after the run."""

    answered: int  # 202s wrk saw (warm-up included)
    in_store: int  # the account's status rows
    in_outbox: int  # sales_order outbox rows
    # Answered orders not in the store exactly once: no status row, another message id, no
    # outbox row, or more than one outbox row.
    not_once: int
    # Committed orders wrk did not see answered (in flight when it stopped): not errors.
    unanswered_in_store: int


def _answered(folder: Path) -> list[tuple[str, str]]:
    found = []
    for path in sorted(folder.glob("answered-*.txt")):
        for line in path.read_text().splitlines():
            order_id, _, message_id = line.partition(" ")
            found.append((order_id, message_id))
    return found


def check_orders(store_path: Path, answered_folder: Path, customer_id: str) -> OrderCheck:
    """Check every order answered 202 (the files `orders.lua` wrote) against the store."""
    answered = _answered(answered_folder)
    with sqlite3.connect(store_path) as db:
        rows = dict(
            db.execute(
                "SELECT order_id, message_id FROM customer_orders WHERE customer_id = ?",
                (customer_id,),
            ).fetchall()
        )
        outbox = Counter(
            order_id
            for (order_id,) in db.execute(
                """
                SELECT json_extract(CAST(body AS TEXT), '$.document.order_id') FROM outbox
                WHERE document_type = 'sales_order' AND partner_id = ?
                """,
                (customer_id,),
            )
        )
    db.close()
    seen = Counter(order_id for order_id, _ in answered)
    not_once = sum(
        1
        for order_id, message_id in answered
        if rows.get(order_id) != message_id or outbox[order_id] != 1 or seen[order_id] != 1
    )
    return OrderCheck(
        answered=len(answered),
        in_store=len(rows),
        in_outbox=sum(outbox.values()),
        not_once=not_once,
        unanswered_in_store=len(rows.keys() - seen.keys()),
    )


def _orders(bench: BenchRun, running: RunningSystem) -> Target:
    """New orders to the system's customer API (`orders.lua`)."""
    folder = bench.folder(running.system.name)
    script_input = write_orders_input(
        bench.workdir / "orders-input.lua", run=bench.token, answered=folder
    )
    port = running.extra["customer_api_port"]
    return Target(f"http://127.0.0.1:{port}", ORDERS_SCRIPT, script_input)


async def _measure_orders(bench: BenchRun) -> SystemResult:
    system = SYSTEMS[ORDERS_SYSTEM]
    measured = await measure(bench, system, _orders)
    folder = bench.folder(system.name)
    # The gateway has stopped: its store file holds every commit (the WAL is read on open).
    check = check_orders(folder / "gateway.db", folder, BENCH_CUSTOMER.id)
    measured.figures |= {f"orders_{k}": v for k, v in msgspec.to_builtins(check).items()}
    return measured


async def run(bench: BenchRun) -> None:
    for name in bench.systems:
        system = SYSTEMS[name]
        try:
            if name == ORDERS_SYSTEM:
                measured = await _measure_orders(bench)
            else:
                measured = await measure(bench, system)
        except Exception as exc:
            measured = failed(system, exc)
        bench.add(measured)
    orders = bench.result.figure(ORDERS_SYSTEM, "accepted_per_s")
    not_once = bench.result.figure(ORDERS_SYSTEM, "orders_not_once")
    bench.result.ratios += [
        ratio(
            "orders / durable webhook ingest (gateway-orders / gateway)",
            orders,
            bench.result.figure("gateway", "accepted_per_s"),
            detail="customer API orders/s over signed webhook POs/s, the same gateway build "
            "(issue 20)",
        ),
        ratio(
            "orders / HTTP ceiling (uvicorn)",
            orders,
            bench.result.figure("http-ceiling", "accepted_per_s"),
        ),
        ratio(
            "orders answered 202 not in the store exactly once",
            not_once,
            None if not_once is None else 1,
            below=1,
            detail="status row with the answer's message id and one sales_order outbox row each",
        ),
    ]
    bench.note(
        f"wrk -t{bench.options.threads} -c{bench.options.connections} "
        f"-d{bench.options.duration_s:g}s; orders: each a new Idempotency-Key, {LINES} lines "
        f"of a {len(BENCH_CUSTOMER.items)}-SKU catalogue, {len(order_body())} bytes; webhooks: "
        f"each a new signed PO; store synchronous={bench.options.synchronous}"
    )


SCENARIO = Scenario(
    name="orders",
    summary="customer API orders (unique Idempotency-Keys, wrk) beside durable webhook ingest "
    "and the HTTP ceiling; every 202 checked in the store",
    default_systems=(ORDERS_SYSTEM, "gateway", "http-ceiling"),
    columns=COLUMNS,
    run=run,
)
