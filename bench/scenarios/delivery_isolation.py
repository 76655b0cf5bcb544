"""delivery-isolation: with one partner's endpoint hanging, another keeps its delivery rate.

Two partners subscribe to every ERP purchase order: `bench-healthy`, whose endpoint answers 200
at once, and `bench-other`. `--orders` orders are published on the ERP exchange at a fixed
`--order-rate` (open loop: order i is due at t0 + i/rate whatever the broker does), the gateway
consumes them, keeps each and delivers it, signed, to both partners. Two runs side by side,
each with a fresh gateway and fresh endpoints on the same broker:

- `other-healthy` (the baseline): `bench-other` answers 200 at once too;
- `other-hanging`: `bench-other` reads each call and never answers, so every call to it holds
  a connection until the gateway's per-partner `timeout_s` (`--hang-timeout`, 2 s) runs out.

Measured on the healthy partner's endpoint (both sides record CLOCK_MONOTONIC): distinct orders
received, delivered/s (orders received ÷ seconds from the first order due to the last one
received: the offered rate when the gateway keeps up), and latency from when an order was due
to its first receipt. The figure held to a target is delivered/s with the other partner
hanging ÷ the baseline's: ~1.0 when a hanging partner only ever delays itself.

Both partners have the same outbound settings; only the endpoint differs. The hanging one is
made as costly as it can be: its circuit breaker never opens and its retries come after 1 s, so
it keeps every one of its `concurrency` slots busy with hanging calls for the whole run.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import aio_pika
import anyio
import numpy as np

from bench.harness.broker import Broker
from bench.harness.consumer import read_receipts
from bench.harness.documents import OrderTemplate
from bench.harness.gateway import GATEWAY_BIN, gateway_config_text
from bench.harness.latency import percentiles_ms
from bench.harness.probes import http_get, port_open, scrape
from bench.harness.processes import Service, service
from bench.harness.results import SystemResult, ratio
from bench.harness.run import BenchRun, Scenario
from bench.harness.systems import SYSTEMS
from bench.scenarios._shared import failed, machine_figures
from gateway.localbroker import free_port

__all__ = ["SCENARIO", "isolation_config", "publish_orders"]

HOST = "127.0.0.1"
HEALTHY, OTHER = "bench-healthy", "bench-other"
ERP_EXCHANGE = "bench.erp"
ROUTING_KEY = "purchase_order.released"
#: The two runs: label and how the other partner's endpoint behaves.
RUNS: tuple[tuple[str, Literal["ok", "hang"]], ...] = (
    ("other-healthy", "ok"),
    ("other-hanging", "hang"),
)
# Outbound settings of both partners: calls in flight, and a rate limit far above the offered
# rate (the bench measures isolation, not the token bucket).
CONCURRENCY = 8
RATE_PER_SECOND, BURST = 5_000.0, 500
RETRY_SCHEDULE_S = (1.0, 1.0, 1.0)
BREAKER_FAILURES = 1_000_000  # never opens: the hanging partner keeps its slots busy
#: Publishes awaiting their broker confirm at once.
MAX_IN_FLIGHT = 256
#: How long the healthy partner gets, after the last order is due, to receive every order.
DRAIN_S = 60.0
#: How long the gateway may take to start consuming its ERP queue once it reports ready.
CONSUMING_WITHIN_S = 30.0
#: Endpoints stop fast: a hanging one has nothing to finish.
ENDPOINT_GRACE_S = 3.0
#: A baseline delivering under this share of the offered rate is saturated, not isolated.
KEEPS_UP = 0.95
#: Width of the bins of the delivered-over-time series.
TIMELINE_BIN_S = 0.5
COLUMNS = (
    "offered_per_s",
    "healthy_delivered",
    "healthy_missing",
    "healthy_per_s",
    "p50_ms",
    "p99_ms",
    "max_ms",
    "other_calls",
    "other_orders_reached",
    "gateway_cpu_share",
    "other_load_cores",
)


def _s(value: str) -> str:
    # A JSON string is a valid TOML basic string for the text written here.
    return json.dumps(value)


def _secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def isolation_config(
    *,
    http_port: int,
    admin_port: int,
    store_path: Path,
    amqp_url: str,
    queue: str,
    endpoints: dict[str, int],
    timeout_s: float,
    synchronous: Literal["FULL", "NORMAL"] = "FULL",
) -> str:
    """Return the gateway's TOML: the bench base, one ERP queue, each partner gets every order."""
    lines = [
        gateway_config_text(
            http_port=http_port,
            admin_port=admin_port,
            store_path=store_path,
            amqp_url=amqp_url,
            partners=[],
            synchronous=synchronous,
        ),
        "[erp]",
        "publish_events = false",  # nobody listens to ERP events here
        "",
        "[[erp.consumers]]",
        f"queue = {_s(queue)}",
        f"exchange = {_s(ERP_EXCHANGE)}",
        f"bindings = {{ {_s(ROUTING_KEY)} = {_s('purchase_order')} }}",
    ]
    for partner in endpoints:
        # No match: every purchase order goes to every partner.
        lines += ["", "[[erp.subscriptions]]", f"partner = {_s(partner)}"]
        lines += ['document = "purchase_order"']
    for partner, port in endpoints.items():
        lines += [
            "",
            "[[partners]]",
            f"id = {_s(partner)}",
            f"name = {_s('Bench partner ' + partner)}",
            f"secrets = [{_s(_secret())}]",
            'receives = ["purchase_order"]',
            "",
            "[partners.outbound]",
            f"url = {_s(f'http://{HOST}:{port}/hooks/orders')}",
            f"secret = {_s(_secret())}",
            f"timeout_s = {timeout_s}",
            f"concurrency = {CONCURRENCY}",
            f"rate_per_second = {RATE_PER_SECOND}",
            f"burst = {BURST}",
            f"retry_schedule_s = {list(RETRY_SCHEDULE_S)}",
            "jitter = 0.0",
            f"breaker_failures = {BREAKER_FAILURES}",
            'allow_networks = ["127.0.0.0/8"]',
        ]
    return "\n".join(lines) + "\n"


async def publish_orders(
    connection: aio_pika.abc.AbstractConnection,
    template: OrderTemplate,
    *,
    count: int,
    rate: float,
    prefix: str,
) -> np.ndarray:
    """Publish orders 0..count-1 on the ERP exchange, order i due at t0 + i/rate; return due ns.

    Persistent, with publisher confirms, at most `MAX_IN_FLIGHT` unconfirmed; a publish that
    waits for a slot is late, and its lateness counts in the latency (due time, not sent time).
    """
    due = np.zeros(count, np.int64)
    slots = anyio.Semaphore(MAX_IN_FLIGHT)
    async with connection.channel(publisher_confirms=True) as channel:
        exchange = await channel.get_exchange(ERP_EXCHANGE)

        async def publish(seq: int) -> None:
            try:
                message = aio_pika.Message(
                    template.body(seq),
                    message_id=f"{prefix}-{seq}",
                    correlation_id=f"{prefix}-corr-{seq}",
                    content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                )
                await exchange.publish(message, routing_key=ROUTING_KEY)
            finally:
                slots.release()

        start = time.monotonic_ns()
        async with anyio.create_task_group() as tg:
            for seq in range(count):
                at = start + round(seq * 1e9 / rate)
                wait = (at - time.monotonic_ns()) / 1e9
                if wait > 0:
                    await anyio.sleep(wait)
                due[seq] = at
                await slots.acquire()
                tg.start_soon(publish, seq)
    return due


@asynccontextmanager
async def _endpoint(
    partner: str, port: int, mode: str, out: Path, folder: Path
) -> AsyncIterator[Service]:
    argv = [
        sys.executable,
        "-m",
        "bench.harness.partner_endpoint",
        "--port",
        str(port),
        "--mode",
        mode,
        "--out",
        str(out),
    ]

    async def ready() -> bool:
        return await port_open(HOST, port)

    log = folder / f"{partner}.log"
    async with service(partner, argv, log_path=log, ready=ready, grace=ENDPOINT_GRACE_S) as s:
        yield s


async def _wait_consuming(broker: Broker, queue: str, gateway: Service) -> None:
    """Wait (bounded) until the gateway consumes its ERP queue: orders published before are kept
    by the queue anyway, but their latency would include the gateway's start."""
    with anyio.fail_after(CONSUMING_WITHIN_S):
        while True:
            gateway.check_alive()
            try:
                async with broker.connection.channel() as channel:
                    declared = await channel.declare_queue(queue, passive=True)
                    if (declared.declaration_result.consumer_count or 0) > 0:
                        return
            except aio_pika.exceptions.AMQPError:
                pass  # not declared yet
            await anyio.sleep(0.1)


def _first_arrivals(
    seq: np.ndarray, ns: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Return (orders received, first receipt ns of each, duplicate receipts) among 0..count-1."""
    mine = (seq >= 0) & (seq < count)
    order = np.argsort(ns[mine], kind="stable")
    seqs, times = seq[mine][order], ns[mine][order]
    unique, first = np.unique(seqs, return_index=True)
    return unique, times[first], int(seqs.size - unique.size)


def healthy_figures(due: np.ndarray, seq: np.ndarray, ns: np.ndarray) -> dict[str, Any]:
    """Return the healthy partner's counts, delivered/s, latency and delivered-over-time rows."""
    count = due.size
    orders, arrived, duplicates = _first_arrivals(seq, ns, count)
    offered_span = float(due[-1] - due[0]) / 1e9 if count > 1 else 0.0
    span = float(arrived.max() - due[0]) / 1e9 if orders.size else 0.0
    figures: dict[str, Any] = {
        "published": count,
        "offered_per_s": round(count / offered_span, 1) if offered_span else None,
        "healthy_delivered": int(orders.size),
        "healthy_missing": int(count - orders.size),
        "healthy_duplicates": duplicates,
        "healthy_per_s": round(orders.size / span, 1) if span > 0 else None,
        **percentiles_ms(arrived - due[orders]),
    }
    timeline: list[list[float]] = []
    if orders.size:
        offsets = (arrived - due[0]) / 1e9
        edges = np.arange(0.0, float(offsets.max()) + TIMELINE_BIN_S, TIMELINE_BIN_S)
        counts, _ = np.histogram(offsets, bins=edges)
        timeline = [
            [round(float(t), 2), round(float(c) / TIMELINE_BIN_S, 1)]
            for t, c in zip(edges[1:], counts, strict=True)
        ]
    figures["timeline"] = timeline
    return figures


async def _measure(bench: BenchRun, label: str, other_mode: Literal["ok", "hang"]) -> SystemResult:
    options = bench.options
    broker = bench.need_broker()
    folder = bench.folder(label)
    queue = f"bench.gateway-erp.{label}"
    ports = {HEALTHY: free_port(), OTHER: free_port()}
    receipts = {partner: folder / f"{partner}.bin" for partner in ports}
    modes = {HEALTHY: "ok", OTHER: other_mode}
    http_port, admin_port = free_port(), free_port()
    config = folder / "gateway.toml"
    config.write_text(
        isolation_config(
            http_port=http_port,
            admin_port=admin_port,
            store_path=folder / "gateway.db",
            amqp_url=broker.url,
            queue=queue,
            endpoints=ports,
            timeout_s=options.hang_timeout_s,
            synchronous=options.synchronous,
        )
    )
    async with broker.connection.channel() as channel:
        await channel.declare_exchange(ERP_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)

    async def gateway_ready() -> bool:
        answer = await http_get(HOST, admin_port, "/readyz")
        return answer is not None and answer[0] == 200

    async with AsyncExitStack() as stack:
        endpoints = [
            await stack.enter_async_context(
                _endpoint(partner, port, modes[partner], receipts[partner], folder)
            )
            for partner, port in ports.items()
        ]
        gateway = await stack.enter_async_context(
            service(
                "gateway",
                [str(GATEWAY_BIN), "run", str(config)],
                log_path=folder / "gateway.log",
                ready=gateway_ready,
                cwd=folder,
            )
        )
        await _wait_consuming(broker, queue, gateway)
        quiet = await bench.wait_for_quiet()
        # Everything the bench runs besides the gateway, for the machine's "other load".
        helpers = [broker.watch, *(e.watch for e in endpoints)]
        helpers_start = [w.read() for w in helpers]
        machine_start, gateway_start = bench.machine.read(), gateway.watch.read()
        due = await publish_orders(
            broker.connection,
            bench.template,
            count=options.orders,
            rate=options.order_rate,
            prefix=f"bench-{bench.token}-{label}",
        )
        with anyio.move_on_after(DRAIN_S):
            while _first_arrivals(*read_receipts(receipts[HEALTHY]), due.size)[0].size < due.size:
                gateway.check_alive()
                await anyio.sleep(0.1)
        gateway_end, machine_end = gateway.watch.read(), bench.machine.read()
        helper_figures = [
            w.figures(start, w.read()) for w, start in zip(helpers, helpers_start, strict=True)
        ]
        metrics = await scrape(HOST, admin_port)
    # The endpoints are stopped: their files hold every call they got.
    figures = healthy_figures(due, *read_receipts(receipts[HEALTHY]))
    timeline = figures.pop("timeline")
    other_seq, _ = read_receipts(receipts[OTHER])
    gateway_figures = gateway.watch.figures(gateway_start, gateway_end)
    figures |= {
        "other_mode": other_mode,
        "other_calls": int(other_seq.size),
        "other_orders_reached": int(np.unique(other_seq[other_seq >= 0]).size),
        "gateway_cpu_share": gateway_figures.cpu_share,
        "gateway_peak_rss_mib": gateway_figures.peak_rss_mib,
        **machine_figures(
            bench.machine.figures(machine_start, machine_end), gateway_figures, *helper_figures
        ),
        "broker_cpu_share": helper_figures[0].cpu_share,
        **quiet,
        "gateway_delivery_metrics": {
            k: v
            for k, v in metrics.items()
            if "deliver" in k and not k.split("{")[0].endswith(("_bucket", "_created"))
        },
    }
    return SystemResult(
        system=label,
        role="gateway",
        summary=f"gateway; {OTHER}'s endpoint {'hangs' if other_mode == 'hang' else 'answers'}",
        figures=figures,
        series={"timeline": timeline},
        processes={"gateway": gateway_figures},
    )


async def run(bench: BenchRun) -> None:
    gateway = SYSTEMS["gateway"]
    for label, other_mode in RUNS:
        try:
            measured = await _measure(bench, label, other_mode)
        except Exception as exc:
            measured = failed(gateway, exc)
            measured.system = label
        bench.add(measured)
    baseline, hanging = (label for label, _ in RUNS)
    figure = bench.result.figure
    bench.result.ratios += [
        ratio(
            "healthy partner delivered/s: other hanging ÷ other healthy",
            figure(hanging, "healthy_per_s"),
            figure(baseline, "healthy_per_s"),
            at_least=0.95,
            detail="~1.0: a hanging partner only delays itself",
        ),
        ratio(
            "healthy partner orders missing, other hanging",
            figure(hanging, "healthy_missing"),
            1,
            below=1,
            detail=f"of {bench.options.orders:,}, within {DRAIN_S:g} s of the last",
        ),
        ratio(
            "healthy partner p99 latency: other hanging ÷ other healthy",
            figure(hanging, "p99_ms"),
            figure(baseline, "p99_ms"),
        ),
    ]
    kept_up, offered = figure(baseline, "healthy_per_s"), figure(baseline, "offered_per_s")
    if kept_up is not None and offered and kept_up < KEEPS_UP * offered:
        bench.note(
            "the baseline did not keep up with the offered rate: both runs are saturated, and "
            "a hanging partner frees capacity for the other; lower --order-rate to measure "
            "isolation"
        )
    if not figure(hanging, "other_calls"):
        bench.note("the hanging endpoint got no call: the run did not exercise a hang")
    bench.note(
        f"{bench.options.orders:,} ERP purchase orders at {bench.options.order_rate:g}/s per run, "
        f"each to both partners; partners' timeout_s = {bench.options.hang_timeout_s:g}, "
        f"concurrency = {CONCURRENCY}, retries after {list(RETRY_SCHEDULE_S)} s, breaker off; "
        "latency: order due -> first receipt at the healthy endpoint"
    )


SCENARIO = Scenario(
    name="delivery-isolation",
    summary="one partner's endpoint hangs: does another keep its delivery rate?",
    default_systems=("gateway",),
    columns=COLUMNS,
    run=run,
    always_broker=True,
)
