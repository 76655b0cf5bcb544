"""end-to-end: open-loop load at fixed rates, from webhook to a consumer on the queue.

For each system, a staircase: `--rates` (1k, 2k, 5k msg/s), then upward by `--rate-growth`
up to `--max-rate`, each held for `--step-seconds` (60). The open-loop generator
(`bench.harness.openloop`) records when each request was due and answered; the consumer
(`bench.harness.consumer`) when its message arrived. Per step: delivered/s, errors, latency
p50/p99 from request due time to consumer receipt, and whether the step was sustained (errors
and losses under 0.1 %, backlog not growing: see `bench.harness.latency`). The staircase stops
at the first step not sustained; the system's figure is the highest rate it sustained.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio

from bench.harness.consumer import read_receipts
from bench.harness.latency import analyse_step, load_requests
from bench.harness.processes import run_to_end, sample_every
from bench.harness.results import RunResult, SystemResult, ratio
from bench.harness.run import BenchRun, Options, Scenario
from bench.harness.systems import SYSTEMS, System, start_system
from bench.scenarios._shared import (
    consumer,
    failed,
    generator_argv,
    machine_figures,
    outbox_backlog,
)

__all__ = ["SCENARIO"]

TARGET_RATE = 2000  # the rate of the p99 target
TARGET_P99_MS = 25.0
DRAIN_S = 10.0
QUICK_DRAIN_S = 3.0
MAX_STEPS = 25
COLUMNS = (
    "max_sustained_per_s",
    "p50_ms_at_2000",
    "p99_ms_at_2000",
    "http_p99_ms_at_2000",
    "steps_run",
    "peak_rss_mib",
    "errors",
)


def rates(options: Options) -> Iterator[int]:
    """Yield the staircase: the listed rates, then growing by `rate_growth` to `max_rate`."""
    listed = [r for r in options.rates if r <= options.max_rate][:MAX_STEPS]
    yield from listed
    if not listed:
        return
    rate = float(listed[-1])
    for _ in range(MAX_STEPS - len(listed)):
        rate *= options.rate_growth
        if rate > options.max_rate:
            return
        yield int(round(rate, -2))


async def _received(receipts: Path, first_seq: int, wanted: int, within: float) -> None:
    """Wait until the consumer has `wanted` receipts from `first_seq` on, or `within` seconds."""
    with anyio.move_on_after(within):
        while True:
            seq, _ = read_receipts(receipts)
            if int((seq >= first_seq).sum()) >= wanted:
                return
            await anyio.sleep(0.2)


async def _staircase(bench: BenchRun, system: System) -> SystemResult:
    options = bench.options
    broker = bench.need_broker()
    await broker.reset_sink()
    folder = bench.folder(system.name)
    drain = QUICK_DRAIN_S if options.quick else DRAIN_S
    steps: list[dict[str, Any]] = []
    peak_rss = 0.0
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
        seq = 0
        quiet = await bench.wait_for_quiet()
        for rate in rates(options):
            count = max(1, int(rate * options.step_s))
            out = folder / f"step-{rate}.npz"
            watches = [bench.machine, running.service.watch, broker.watch, probe.watch]
            before = [w.read() for w in watches]
            async with anyio.create_task_group() as tg:
                tg.start_soon(sample_every, watches, 0.5)
                generator = await run_to_end(
                    f"openloop-{rate}",
                    generator_argv(
                        running.url,
                        bench.load_input(),
                        rate=rate,
                        count=count,
                        seq_start=seq,
                        connections=options.e2e_connections,
                        out=out,
                        drain_s=drain,
                    ),
                    log_path=folder / f"openloop-{rate}.log",
                    time_limit=options.step_s * 1.5 + drain + 30,
                )
                tg.cancel_scope.cancel()
            after = [w.read() for w in watches]
            if generator.returncode != 0:
                raise RuntimeError(
                    f"generator exited {generator.returncode}: {generator.output[-2000:]}"
                )
            running.service.check_alive()
            probe.check_alive()
            requests = load_requests(out)
            accepted = int(((requests["status"] >= 200) & (requests["status"] < 300)).sum())
            await _received(receipts, seq, accepted, drain)
            received_seq, received_ns = read_receipts(receipts)
            step = analyse_step(requests, received_seq, received_ns, offered_rate=rate)
            uses = [w.figures(b, a) for w, b, a in zip(watches, before, after, strict=True)]
            peak_rss = max(peak_rss, uses[1].peak_rss_mib)
            step.update(
                system_cpu_share=uses[1].cpu_share,
                system_peak_rss_mib=uses[1].peak_rss_mib,
                broker_cpu_share=uses[2].cpu_share,
                consumer_cpu_share=uses[3].cpu_share,
                generator_cpu_share=generator.figures.cpu_share,
                outbox_backlog_end=await outbox_backlog(running),
                **machine_figures(uses[0], *uses[1:], generator.figures),
            )
            steps.append(step)
            print(
                f"[bench] end-to-end {system.name} {rate}/s: p99 {step['p99_ms']} ms, "
                f"sustained {step['sustained']}",
                flush=True,
            )
            seq += count
            if not step["sustained"]:
                break
    at_target = next((s for s in steps if s["offered_per_s"] == TARGET_RATE), {})
    sustained = [s["offered_per_s"] for s in steps if s["sustained"]]
    figures = {
        "max_sustained_per_s": max(sustained) if sustained else None,
        "p50_ms_at_2000": at_target.get("p50_ms"),
        "p99_ms_at_2000": at_target.get("p99_ms"),
        "http_p99_ms_at_2000": at_target.get("http_p99_ms"),
        "steps_run": len(steps),
        "peak_rss_mib": peak_rss,
        "errors": sum(s["errors"] for s in steps),
        "step_s": options.step_s,
        **quiet,
        "steps": steps,
    }
    series = [
        [
            s["offered_per_s"],
            s["delivered_per_s"],
            s["p50_ms"] or 0,
            s["p99_ms"] or 0,
            float(s["sustained"]),
        ]
        for s in steps
    ]
    return SystemResult(
        system=system.name,
        role=system.role,
        summary=system.summary,
        figures=figures,
        series={"steps": series},
    )


async def run(bench: BenchRun) -> None:
    for name in bench.systems:
        system = SYSTEMS[name]
        try:
            measured = await _staircase(bench, system)
        except Exception as exc:
            measured = failed(system, exc)
        bench.add(measured)
    result = bench.result
    gateway_best = result.figure("gateway", "max_sustained_per_s")
    result.ratios += [
        ratio(
            f"gateway end-to-end p99 at {TARGET_RATE} msg/s (ms)",
            result.figure("gateway", "p99_ms_at_2000"),
            1.0,
            below=TARGET_P99_MS,
        ),
        ratio("gateway highest sustained rate (msg/s)", gateway_best, 1.0),
        ratio(
            "gateway / fastapi-aiopika highest sustained rate",
            gateway_best,
            result.figure("fastapi-aiopika", "max_sustained_per_s"),
        ),
        ratio(
            "gateway / fastapi-faststream highest sustained rate",
            gateway_best,
            result.figure("fastapi-faststream", "max_sustained_per_s"),
        ),
    ]
    bench.note(
        f"steps of {bench.options.step_s:g} s; open loop over {bench.options.e2e_connections} "
        "connections; latency from the time a request was due to its receipt by the consumer; "
        "sustained = errors and losses < 0.1 %, backlog growth < 2 % of the rate per second"
    )


STEP_COLUMNS = (
    "offered_per_s",
    "delivered_per_s",
    "p50_ms",
    "p99_ms",
    "http_p99_ms",
    "errors",
    "backlog_growth_per_s",
    "sustained",
    "system_cpu_share",
    "generator_cpu_share",
    "other_load_cores",
)


def steps_table(result: RunResult) -> str:
    """Return every system's steps as one markdown table."""
    lines = [
        "| system | " + " | ".join(STEP_COLUMNS) + " |",
        "|---|" + "---:|" * len(STEP_COLUMNS),
    ]
    for system in result.systems:
        for step in system.figures.get("steps", []):
            cells = ("n/a" if step.get(c) is None else str(step[c]) for c in STEP_COLUMNS)
            lines.append(f"| {system.system} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


SCENARIO = Scenario(
    name="end-to-end",
    summary="open-loop fixed rates, webhook to consumer; p50/p99 and highest sustained rate",
    default_systems=("gateway", "fastapi-aiopika", "fastapi-faststream"),
    columns=COLUMNS,
    run=run,
    always_broker=True,
    details=steps_table,
)
