"""soak: `--count` messages (1M) through at a steady `--rate`; memory and backlog over time.

One open-loop generator run of `count` requests at `rate` msg/s (1M at 2k/s: about 8 min),
with the consumer draining the sink. Every `--sample-seconds` the harness records: messages
accepted (the generator's progress line), received by the consumer, the system's RSS, the
gateway's outbox backlog and the sink's depth. The figure held to a target is RSS once every
message is through divided by RSS after the first tenth (100k of 1M): a leak grows it.
"""

from __future__ import annotations

import time

import anyio
import numpy as np

from bench.harness.broker import Broker
from bench.harness.consumer import read_receipts
from bench.harness.latency import Requests, analyse_step, first_receipts, load_requests
from bench.harness.processes import Service, run_to_end
from bench.harness.results import SystemResult, ratio
from bench.harness.run import BenchRun, Scenario
from bench.harness.systems import SYSTEMS, RunningSystem, System, start_system
from bench.scenarios._shared import consumer, failed, generator_argv, outbox_backlog

__all__ = ["SCENARIO"]

#: The early checkpoint: RSS once this share of the messages is accepted ("after 100k of 1M").
EARLY_SHARE = 0.1
DRAIN_S = 60.0
COLUMNS = (
    "rss_early_mib",
    "rss_end_mib",
    "rss_growth",
    "peak_rss_mib",
    "backlog_max",
    "backlog_end",
    "accepted",
    "received",
    "errors",
    "p50_ms",
    "p99_ms",
    "p99.9_ms",
)


async def _sample(
    running: RunningSystem, broker: Broker, probe: Service, samples: list[list[float]]
) -> None:
    """Record [monotonic ns, RSS MiB, outbox backlog (-1: none), sink depth] now."""
    backlog = await outbox_backlog(running)
    samples.append(
        [
            float(time.monotonic_ns()),
            round(running.service.watch.read().rss / 2**20, 1),
            -1.0 if backlog is None else backlog,
            float(await broker.sink_depth()),
        ]
    )
    probe.watch.read()


def _series(
    samples: list[list[float]], requests: Requests, received_ns: np.ndarray
) -> list[list[float]]:
    """Return rows [t, accepted, received, rss_mib, outbox_backlog, sink_depth] per sample.

    Accepted and received are counted from the generator's answer times and the consumer's
    receipt times at each sample's instant, so the two are exact and comparable.
    """
    ok = (requests["status"] >= 200) & (requests["status"] < 300)
    answered = np.sort(requests["done_ns"][ok])
    arrived = np.sort(received_ns)
    start = samples[0][0]
    rows = []
    for at, rss, backlog, depth in samples:
        accepted = int(np.searchsorted(answered, at, side="right"))
        received = int(np.searchsorted(arrived, at, side="right"))
        rows.append([round((at - start) / 1e9, 2), accepted, received, rss, backlog, depth])
    return rows


async def _soak(bench: BenchRun, system: System) -> SystemResult:
    options = bench.options
    broker = bench.need_broker()
    await broker.reset_sink()
    folder = bench.folder(system.name)
    gen_log, out = folder / "openloop.log", folder / "soak.npz"
    samples: list[list[float]] = []
    async with (
        start_system(
            system,
            workdir=folder,
            partners=bench.partners,
            amqp_url=broker.url,
            synchronous=options.synchronous,
        ) as running,
        consumer(broker, folder) as (probe, receipts),
    ):
        quiet = await bench.wait_for_quiet()
        argv = generator_argv(
            running.url,
            bench.load_input(),
            rate=options.rate,
            count=options.count,
            seq_start=0,
            connections=options.e2e_connections,
            out=out,
            drain_s=DRAIN_S,
        )
        async with anyio.create_task_group() as tg:

            async def sample_until_cancelled() -> None:
                while True:
                    await _sample(running, broker, probe, samples)
                    running.service.check_alive()
                    await anyio.sleep(options.sample_s)

            tg.start_soon(sample_until_cancelled)
            generator = await run_to_end(
                "openloop",
                argv,
                log_path=gen_log,
                time_limit=options.count / options.rate * 1.5 + DRAIN_S + 60,
            )
            # Let the last messages through, then one more sample: the "after 1M" reading.
            requests = load_requests(out)
            accepted = int(((requests["status"] >= 200) & (requests["status"] < 300)).sum())
            with anyio.move_on_after(DRAIN_S):
                while read_receipts(receipts)[0].size < accepted:
                    await anyio.sleep(0.5)
            tg.cancel_scope.cancel()
        await _sample(running, broker, probe, samples)
    if generator.returncode != 0:
        raise RuntimeError(f"generator exited {generator.returncode}: {generator.output[-2000:]}")
    received_seq, received_ns = read_receipts(receipts)
    overall = analyse_step(requests, received_seq, received_ns, offered_rate=options.rate)
    _, first_arrivals, _ = first_receipts(requests, received_seq, received_ns)
    series = _series(samples, requests, first_arrivals)
    early = next((row for row in series if row[1] >= EARLY_SHARE * options.count), None)
    end = series[-1]
    figures = {
        "rss_early_mib": early[3] if early else None,
        "rss_end_mib": end[3],
        "rss_growth": round(end[3] / early[3], 3) if early and early[3] else None,
        "peak_rss_mib": max(row[3] for row in series),
        "backlog_max": max(row[1] - row[2] for row in series),
        "backlog_end": end[1] - end[2],
        "outbox_backlog_max": max(row[4] for row in series),
        "accepted": overall["accepted"],
        "received": overall["received"],
        "errors": overall["errors"],
        **{k: overall[k] for k in ("p50_ms", "p99_ms", "p99.9_ms", "http_p99_ms", "duplicates")},
        "generator_cpu_share": generator.figures.cpu_share,
        "early_checkpoint": int(EARLY_SHARE * options.count),
        **quiet,
    }
    return SystemResult(
        system=system.name,
        role=system.role,
        summary=system.summary,
        figures=figures,
        series={"soak": series},
        processes={"generator": generator.figures},
    )


async def run(bench: BenchRun) -> None:
    for name in bench.systems:
        system = SYSTEMS[name]
        try:
            measured = await _soak(bench, system)
        except Exception as exc:
            measured = failed(system, exc)
        bench.add(measured)
    options = bench.options
    early = int(EARLY_SHARE * options.count)
    for soaked in bench.result.systems:
        bench.result.ratios.append(
            ratio(
                f"{soaked.system} RSS after {options.count:,} / after {early:,}",
                bench.result.figure(soaked.system, "rss_growth"),
                1.0,
                below=1.2,
            )
        )
    bench.note(
        f"{options.count:,} messages at {options.rate:g} msg/s, sampled every "
        f"{options.sample_s:g} s; rows of series.soak: [t, accepted, received, rss_mib, "
        "outbox_backlog (-1: none), sink_depth]"
    )


SCENARIO = Scenario(
    name="soak",
    summary="1M messages through at a steady rate; RSS and backlog sampled and plotted",
    default_systems=("gateway",),
    columns=COLUMNS,
    run=run,
    always_broker=True,
)
