"""ingest-burst: many partners post signed purchase orders as fast as each system accepts them.

wrk (closed loop, `--connections` keep-alive connections, `--threads` threads) posts a new
signed order per request, rotating over the bench partners, for `--duration` seconds after a
short warm-up. Per system: accepted/s, latency p50/p99/p99.9, errors, peak RSS and CPU share of
the system, wrk's own CPU share, the broker's; for the gateway (whose relay runs meanwhile) the
outbox backlog when the load stops and how long it takes to drain.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import anyio
import msgspec

from bench.harness.processes import sample_every
from bench.harness.profile import Profile, record
from bench.harness.results import SystemResult, ratio
from bench.harness.run import BenchRun, Options, Scenario
from bench.harness.systems import HTTP_SYSTEMS, SYSTEMS, RunningSystem, System, start_system
from bench.harness.wrk import SIGN_SCRIPT, run_wrk
from bench.scenarios._shared import (
    failed,
    gateway_figures,
    machine_figures,
    outbox_backlog,
    process_figures,
    wait_backlog_drained,
)

__all__ = ["SCENARIO", "Target", "measure", "webhooks"]

WARMUP_S = 2.0
#: How long the gateway's relay gets to empty the outbox after the burst before we stop waiting.
DRAIN_TIMEOUT_S = 60.0
#: How long past wrk's end a profile still being written is waited for.
PROFILE_GRACE_S = 10.0
QUICK_DRAIN_TIMEOUT_S = 10.0
#: The purchase-order threads may cost the webhook path at most a tenth (issue 18).
WORKFLOW_ON_OFF_TARGET = 0.9

COLUMNS = (
    "accepted_per_s",
    "p50_ms",
    "p99_ms",
    "p99.9_ms",
    "errors",
    "peak_rss_mib",
    "cpu_share",
    "main_cpu_share",
    "cpu_us_per_request",
    "generator_cpu_share",
    "broker_cpu_share",
    "outbox_backlog_end",
    "backlog_drain_s",
    "accepted_total",
    "delivered",
    "other_load_cores",
)


class Target(NamedTuple):
    """Where wrk sends its load, with which script and script input."""

    url: str
    script: Path
    script_input: Path


def webhooks(bench: BenchRun, running: RunningSystem) -> Target:
    """Signed purchase orders to the system's webhook endpoints (`sign.lua`)."""
    return Target(running.url, SIGN_SCRIPT, bench.wrk_input())


async def _profile(pid: int, logs: Path, options: Options, into: list[Profile | str]) -> None:
    """Sample the system during the measured load (from 1 s in to 1 s before its end).

    A profile that cannot be taken (no py-spy, no permission to attach) leaves a note saying
    why instead of failing the measurement.
    """
    await anyio.sleep(1.0)
    seconds = max(1.0, options.duration_s - 2.0)
    out = logs / "py-spy.raw"
    try:
        into.append(await record(pid, seconds=seconds, rate_hz=options.profile_hz, out=out))
    except (RuntimeError, OSError, TimeoutError) as exc:
        into.append(f"no profile of pid {pid}: {exc}")


def _cpu_us_per_request(cpu_share: float, accepted_per_s: float) -> float | None:
    if accepted_per_s <= 0:
        return None
    return round(cpu_share / accepted_per_s * 1e6, 1)


async def measure(
    bench: BenchRun,
    system: System,
    target: Callable[[BenchRun, RunningSystem], Target] = webhooks,
) -> SystemResult:
    """Start `system`, load it with wrk (warm-up, then `--duration`), stop it; its figures.

    `target` says where the load goes: the webhooks by default (the orders scenario sends
    customer orders to the same harness).
    """
    options = bench.options
    broker = bench.broker if system.uses_broker else None
    if broker is not None:
        await broker.reset_sink()
    async with start_system(
        system,
        workdir=bench.folder(system.name),
        partners=bench.partners,
        amqp_url=broker.url if broker else None,
        synchronous=options.synchronous,
    ) as running:
        logs = bench.folder(system.name)
        url, script, script_input = target(bench, running)
        warmed = 0
        if not options.quick:
            warm = await run_wrk(
                url,
                script_input,
                script=script,
                duration_s=WARMUP_S,
                connections=options.connections,
                threads=options.threads,
                epoch=1,
                log_path=logs / "wrk-warmup.log",
            )
            warmed = warm.accepted
        quiet = await bench.wait_for_quiet()
        watches = [bench.machine, running.service.watch] + ([broker.watch] if broker else [])
        before = [w.read() for w in watches]
        profiled: list[Profile | str] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(sample_every, watches, 0.5)
            if options.profile_hz:
                pid = running.service.process.pid
                tg.start_soon(_profile, pid, logs, options, profiled)
            load = await run_wrk(
                url,
                script_input,
                script=script,
                duration_s=options.duration_s,
                connections=options.connections,
                threads=options.threads,
                epoch=2,
                log_path=logs / "wrk.log",
            )
            # The measured window is wrk's: read the counters before waiting for the profile.
            after = [w.read() for w in watches]
            if options.profile_hz:
                with anyio.move_on_after(PROFILE_GRACE_S):
                    while not profiled:
                        await anyio.sleep(0.05)
            tg.cancel_scope.cancel()
        for profile in profiled:
            bench.note(profile if isinstance(profile, str) else profile.line(system.name))
        running.service.check_alive()
        backlog_end = await outbox_backlog(running)
        drain_s = None
        if backlog_end is not None:
            timeout = QUICK_DRAIN_TIMEOUT_S if options.quick else DRAIN_TIMEOUT_S
            drain_s = await wait_backlog_drained(running, timeout)
        delivered = await broker.sink_depth() if broker else None
        metrics = await running.metrics()
    system_use = running.service.watch.figures(before[1], after[1])
    broker_use = watches[2].figures(before[2], after[2]) if broker else None
    figures: dict[str, object] = {
        "accepted_per_s": load.accepted_per_s,
        "requests": load.requests,
        "accepted": load.accepted,
        "errors": sum(load.errors.values()),
        "errors_by_kind": load.errors,
        **{f"{k}_ms": v for k, v in load.latency_ms.items()},
        **process_figures(system_use),
        # What one accepted request costs the system's process, in CPU microseconds (its
        # threads included): the figure to compare when the systems' throughputs differ.
        "cpu_us_per_request": _cpu_us_per_request(system_use.cpu_share, load.accepted_per_s),
        "generator_cpu_share": load.generator.cpu_share,
        "broker_cpu_share": broker_use.cpu_share if broker_use else None,
        **machine_figures(
            bench.machine.figures(before[0], after[0]), system_use, load.generator, broker_use
        ),
        "outbox_backlog_end": backlog_end,
        "backlog_drain_s": drain_s,
        "accepted_total": warmed + load.accepted,
        "delivered": delivered,
        "duration_s": load.duration_s,
        **quiet,
    }
    figures.update(gateway_figures(metrics))
    for profile in profiled:
        if isinstance(profile, Profile):
            figures["profile"] = msgspec.to_builtins(profile)
    return SystemResult(
        system=system.name,
        role=system.role,
        summary=system.summary,
        figures=figures,
        processes={"system": system_use, "wrk": load.generator},
    )


async def run(bench: BenchRun) -> None:
    for name in bench.systems:
        system = SYSTEMS[name]
        try:
            measured = await measure(bench, system)
        except Exception as exc:
            measured = failed(system, exc)
        bench.add(measured)
    gateway = bench.result.figure("gateway", "accepted_per_s")
    bench.result.ratios += [
        ratio(
            "durable ingest / HTTP ceiling (uvicorn)",
            gateway,
            bench.result.figure("http-ceiling", "accepted_per_s"),
            at_least=0.40,
        ),
        ratio(
            "workflow threads on / off (gateway / gateway-no-workflow)",
            gateway,
            bench.result.figure("gateway-no-workflow", "accepted_per_s"),
            at_least=WORKFLOW_ON_OFF_TARGET,
            detail="partners post orders, which open no thread: what the feeder's reading "
            "of each group commit costs the webhook path",
        ),
        ratio(
            "durable ingest / HTTP ceiling (granian)",
            gateway,
            bench.result.figure("http-ceiling-granian", "accepted_per_s"),
        ),
        ratio(
            "gateway / durable sketch (no relay, no idempotency, no rules)",
            gateway,
            bench.result.figure("durable-sketch", "accepted_per_s"),
        ),
        ratio(
            "gateway / fastapi-aiopika",
            gateway,
            bench.result.figure("fastapi-aiopika", "accepted_per_s"),
        ),
        ratio(
            "gateway / fastapi-faststream",
            gateway,
            bench.result.figure("fastapi-faststream", "accepted_per_s"),
        ),
    ]
    bench.note(
        f"wrk -t{bench.options.threads} -c{bench.options.connections} "
        f"-d{bench.options.duration_s:g}s, each request a new order signed in Lua "
        f"(libcrypto HMAC via FFI); {bench.options.partners} partners; "
        f"store synchronous={bench.options.synchronous}"
    )


SCENARIO = Scenario(
    name="ingest-burst",
    summary="signed POs from many partners as fast as accepted (wrk); accepted/s, latency, RSS",
    default_systems=HTTP_SYSTEMS,
    columns=COLUMNS,
    run=run,
)
