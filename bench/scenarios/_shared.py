"""Pieces several scenarios use: recording a failed system, watching the gateway's backlog."""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio

from bench.harness.broker import SINK_QUEUE, Broker
from bench.harness.probes import metric
from bench.harness.processes import ProcessFigures, Service, ServiceFailed, service
from bench.harness.results import SystemResult
from bench.harness.systems import RunningSystem, System

__all__ = [
    "BACKLOG_METRIC",
    "CONFIRMED_METRIC",
    "consumer",
    "failed",
    "gateway_figures",
    "generator_argv",
    "machine_figures",
    "outbox_backlog",
    "process_figures",
    "relay_confirmed",
    "wait_backlog_drained",
]

BACKLOG_METRIC = "gateway_outbox_backlog"
# The relay's confirmed publishes, as the gateway exports them.
CONFIRMED_METRIC = "gateway_relay_confirmed_total"


def failed(system: System, exc: BaseException) -> SystemResult:
    """Return the result of a system that could not be measured, with the reason."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    if isinstance(exc, ServiceFailed):
        reason = str(exc)
    else:
        reason = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        reason += "\n" + "".join(traceback.format_tb(exc.__traceback__)[-3:])
    return SystemResult(system=system.name, role=system.role, summary=system.summary, error=reason)


def machine_figures(machine: ProcessFigures, *ours: ProcessFigures | None) -> dict[str, float]:
    """Return the machine's busy cores over a window and how much of that was not the bench's."""
    own = sum(f.cpu_share for f in ours if f is not None)
    return {
        "machine_busy_cores": machine.cpu_share,
        "other_load_cores": round(max(machine.cpu_share - own, 0.0), 2),
    }


def relay_confirmed(metrics: Mapping[str, float]) -> float | None:
    """Return the relay's confirmed publishes so far, or None if the gateway does not say."""
    return metric(metrics, CONFIRMED_METRIC)


def gateway_figures(metrics: Mapping[str, float]) -> dict[str, Any]:
    """Return what the gateway's own metrics add: mean group-commit size, relay counters."""
    if not metrics:
        return {}
    batches = metric(metrics, "gateway_store_commit_batch_size_count")
    rows = metric(metrics, "gateway_store_commit_batch_size_sum")
    return {
        "commit_batch_mean": round(rows / batches, 1) if rows and batches else None,
        "relay_confirmed": relay_confirmed(metrics),
        "gateway_metrics": {
            k: v
            for k, v in metrics.items()
            if k.startswith("gateway_") and not k.split("{")[0].endswith(("_bucket", "_created"))
        },
    }


def process_figures(figures: ProcessFigures) -> dict[str, float]:
    return {
        "peak_rss_mib": figures.peak_rss_mib,
        "cpu_share": figures.cpu_share,
        # The serving process alone, without its children (the gateway's store writer): the
        # share that says whether the event loop's process is the bound.
        "main_cpu_share": figures.root_cpu_share,
        "cpu_seconds": figures.cpu_seconds,
    }


async def outbox_backlog(running: RunningSystem) -> float | None:
    """Return the gateway's outbox backlog, or None (not the gateway, or no such metric)."""
    return metric(await running.metrics(), BACKLOG_METRIC)


async def wait_backlog_drained(running: RunningSystem, within: float) -> float | None:
    """Wait until the gateway's outbox backlog is 0; the seconds it took, None if not `within`."""
    started = time.monotonic()
    with anyio.move_on_after(within):
        while True:
            backlog = await outbox_backlog(running)
            if backlog is None:
                return None
            if backlog <= 0:
                return round(time.monotonic() - started, 2)
            await anyio.sleep(0.25)
    return None


@asynccontextmanager
async def consumer(broker: Broker, folder: Path) -> AsyncIterator[tuple[Service, Path]]:
    """Run the timestamping consumer on the sink for the block; yield it and its receipts file."""
    receipts = folder / "receipts.bin"
    log = folder / "consumer.log"

    async def ready() -> bool:
        return "consuming" in await anyio.Path(log).read_text(errors="replace")

    argv = [
        sys.executable,
        "-m",
        "bench.harness.consumer",
        "--amqp-url",
        broker.url,
        "--queue",
        SINK_QUEUE,
        "--out",
        str(receipts),
    ]
    async with service("consumer", argv, log_path=log, ready=ready) as running:
        yield running, receipts


def generator_argv(
    url: str,
    load_input: Path,
    *,
    rate: float,
    count: int,
    seq_start: int,
    connections: int,
    out: Path,
    drain_s: float,
) -> list[str]:
    """Return the command line of one open-loop generator run."""
    return [
        sys.executable,
        "-m",
        "bench.harness.openloop",
        "--url",
        url,
        "--input",
        str(load_input),
        "--rate",
        str(rate),
        "--count",
        str(count),
        "--seq-start",
        str(seq_start),
        "--connections",
        str(connections),
        "--drain-s",
        str(drain_s),
        "--out",
        str(out),
    ]
