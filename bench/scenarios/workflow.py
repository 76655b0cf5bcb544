"""workflow: `--threads` purchase-order threads opened from the ERP; inputs applied/s and RSS.

The ERP (aio-pika, confirms) publishes `--threads` released purchase orders as fast as the
broker confirms (`--order-rate`, default unbounded); the gateway keeps each, and its workflow
feeder hands each to a new thread actor, which commits its first step (state, journal, two
timers) in a group commit while the relay publishes the orders' events into the sink. The
orders' requested dates are a month ahead, so no deadline fires during the run.

Measured: inputs applied per second (threads' committed steps, from the gateway's own
`gateway_workflow_inputs_applied_total`, between the first and the last), the peak RSS of the
gateway's process tree (writer process included) while the threads are live, and its RSS and
live actors once they have passivated (`--passivate` seconds idle): what holds memory is the
actors with recent work, not the number of threads.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import aio_pika
import anyio

from bench.harness.documents import BenchPartner, OrderTemplate, order_template
from bench.harness.gateway import GATEWAY_BIN, gateway_config_text
from bench.harness.probes import http_get, metric, scrape
from bench.harness.processes import service
from bench.harness.results import SystemResult, ratio
from bench.harness.run import BenchRun, Scenario
from bench.harness.systems import SYSTEMS
from bench.scenarios._shared import failed, machine_figures
from bench.scenarios.delivery_isolation import (
    ERP_EXCHANGE,
    HOST,
    _wait_consuming,
    publish_orders,
)
from gateway.localbroker import free_port

__all__ = ["SCENARIO"]

COLUMNS = (
    "threads",
    "applied_per_s",
    "publish_per_s",
    "peak_rss_mib",
    "rss_after_passivation_mib",
    "live_after_passivation",
    "gateway_cpu_share",
    "other_load_cores",
)
APPLIED = "gateway_workflow_inputs_applied_total"
#: Inputs per second below which we stop waiting: far below any gateway.
SLOWEST_RATE = 100.0
POLL_S = 0.2
RSS_TARGET_MIB = 300.0


def _s(value: str) -> str:
    return json.dumps(value)


def future_orders(days: int = 30) -> OrderTemplate:
    """The bench's order with every requested date `days` from today (no deadline in the run)."""
    base = order_template()
    day = (dt.date.today() + dt.timedelta(days=days)).isoformat().encode()
    pattern = re.compile(rb'("requested_date":")\d{4}-\d{2}-\d{2}(")')
    return OrderTemplate(
        head=pattern.sub(rb"\g<1>" + day + rb"\g<2>", base.head),
        tail=pattern.sub(rb"\g<1>" + day + rb"\g<2>", base.tail),
        source=base.source,
    )


def workflow_config(
    *, http_port: int, admin_port: int, store: Path, amqp_url: str, queue: str, passivate_s: float
) -> str:
    """The bench gateway's TOML with one ERP queue and the workflow on.

    Its one partner only sends invoices, never posted here: a gateway without partners is
    refused (gateway/config/rules.py), and the run drives the threads by ERP orders alone.
    """
    supplier = BenchPartner("bench-supplier", "whsec_" + base64.b64encode(os.urandom(32)).decode())
    base = gateway_config_text(
        http_port=http_port,
        admin_port=admin_port,
        store_path=store,
        amqp_url=amqp_url,
        partners=[supplier],
        document="invoice",
    )
    return "\n".join(
        [
            base,
            "[erp]",
            "publish_events = true",  # the threads read the ERP's orders from these rows
            "",
            "[[erp.consumers]]",
            f"queue = {_s(queue)}",
            f"exchange = {_s(ERP_EXCHANGE)}",
            'bindings = { "purchase_order.released" = "purchase_order" }',
            "prefetch = 256",
            "concurrency = 64",
            "",
            "[workflow]",
            f"passivate_after_s = {passivate_s}",
            "",
        ]
    )


async def _measure(bench: BenchRun) -> SystemResult:
    options = bench.options
    broker = bench.need_broker()
    await broker.reset_sink()
    folder = bench.folder("gateway")
    queue = "bench.gateway-erp.workflow"
    http_port, admin_port = free_port(), free_port()
    config = folder / "gateway.toml"
    config.write_text(
        workflow_config(
            http_port=http_port,
            admin_port=admin_port,
            store=folder / "gateway.db",
            amqp_url=broker.url,
            queue=queue,
            passivate_s=options.passivate_s,
        )
    )
    async with broker.connection.channel() as channel:
        await channel.declare_exchange(ERP_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)

    async def ready() -> bool:
        answer = await http_get(HOST, admin_port, "/readyz")
        return answer is not None and answer[0] == 200

    threads = options.workflow_threads
    async with service(
        "gateway",
        [str(GATEWAY_BIN), "run", str(config)],
        log_path=folder / "gateway.log",
        ready=ready,
        cwd=folder,
    ) as gateway:
        await _wait_consuming(broker, queue, gateway)
        quiet = await bench.wait_for_quiet()
        start = [broker.watch.read(), bench.machine.read(), gateway.watch.read()]
        published_at = time.monotonic()
        await publish_orders(
            broker.connection,
            future_orders(),
            count=threads,
            rate=options.workflow_rate if options.workflow_rate > 0 else 1e9,
            prefix=f"bench-{bench.token}-workflow",
        )
        publish_s = time.monotonic() - published_at
        first: float | None = None
        last: float | None = None
        applied = 0.0
        with anyio.move_on_after(threads / SLOWEST_RATE + 60):
            while applied < threads:
                gateway.check_alive()
                await anyio.sleep(POLL_S)
                applied = metric(await scrape(HOST, admin_port), APPLIED) or 0.0
                now = time.monotonic()
                if first is None and applied > 0:
                    first = now
                last = now
        end = [broker.watch.read(), bench.machine.read(), gateway.watch.read()]
        # Idle now: every thread passivates within `passivate_s` (and the poll after it).
        await anyio.sleep(options.passivate_s + 3.0)
        after = await scrape(HOST, admin_port)
        rss_after = gateway.watch.read().rss / 2**20
    broker_use = broker.watch.figures(start[0], end[0])
    gateway_use = gateway.watch.figures(start[2], end[2])
    span = (last - published_at) if last is not None else None
    figures: dict[str, Any] = {
        "threads": threads,
        "applied": int(applied),
        "applied_per_s": round(applied / span, 1) if span else None,
        "publish_per_s": round(threads / publish_s, 1) if publish_s else None,
        "peak_rss_mib": gateway_use.peak_rss_mib,
        "rss_after_passivation_mib": round(rss_after, 1),
        "live_after_passivation": metric(after, "gateway_actors_live"),
        "passivated": metric(after, "gateway_actors_passivated_total"),
        "gateway_cpu_share": gateway_use.cpu_share,
        "broker_cpu_share": broker_use.cpu_share,
        **machine_figures(bench.machine.figures(start[1], end[1]), gateway_use, broker_use),
        **quiet,
    }
    return SystemResult(
        system="gateway",
        role="gateway",
        summary="gateway; ERP orders open one thread each (workflow on, relay running)",
        figures=figures,
        processes={"gateway": gateway_use},
    )


async def run(bench: BenchRun) -> None:
    try:
        measured = await _measure(bench)
    except Exception as exc:
        measured = failed(SYSTEMS["gateway"], exc)
    bench.add(measured)
    figure = bench.result.figure
    bench.result.ratios += [
        ratio(
            "peak RSS of the gateway's process tree, MiB",
            figure("gateway", "peak_rss_mib"),
            1,
            below=RSS_TARGET_MIB,
            detail=f"{bench.options.workflow_threads:,} threads; target under {RSS_TARGET_MIB:g}",
        ),
    ]
    bench.note(
        f"{bench.options.workflow_threads:,} ERP orders, each opening a thread; threads passivate "
        f"after {bench.options.passivate_s:g} s idle; applied/s from the first publish to the "
        "last input applied"
    )


SCENARIO = Scenario(
    name="workflow",
    summary="purchase-order threads from the ERP: inputs applied/s, RSS with passivation",
    default_systems=("gateway",),
    columns=COLUMNS,
    run=run,
    always_broker=True,
)
