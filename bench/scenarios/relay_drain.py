"""relay-drain: an outbox of `--rows` rows drained to RabbitMQ with confirms; confirmed/s.

The gateway's outbox is filled through its own front door while the broker refuses to read from
publishing connections (a memory alarm, `set_vm_memory_high_watermark 0`): the webhooks are
accepted and committed, the relay's publishes stall. Clearing the alarm lets the relay drain
the whole outbox at once; the rate is taken from the sink queue's depth (sampled every 50 ms)
between its first rise and the moment it holds every accepted row, and checked against the
gateway's own `gateway_relay_confirmed_total`.

Beside it, the broker ceiling: the same number of envelope-sized persistent messages published
by aio-pika and by aiormq with a sliding window of `--window` confirms
(`bench.baselines.publish_ceiling`), each in its own process.
"""

from __future__ import annotations

import sys
import time

import anyio
import msgspec

from bench.harness.broker import Broker
from bench.harness.probes import metric
from bench.harness.processes import run_to_end, sample_every
from bench.harness.results import SystemResult, ratio
from bench.harness.run import BenchRun, Scenario
from bench.harness.systems import SYSTEMS, System, start_system
from bench.scenarios._shared import (
    BACKLOG_METRIC,
    failed,
    machine_figures,
    outbox_backlog,
    process_figures,
    relay_confirmed,
)

__all__ = ["SCENARIO"]

CEILINGS = {
    "publish-ceiling-aio-pika": System(
        "publish-ceiling-aio-pika",
        "ceiling",
        True,
        "aio-pika, persistent + mandatory, sliding window of confirms",
    ),
    "publish-ceiling-aiormq": System(
        "publish-ceiling-aiormq",
        "ceiling",
        True,
        "aiormq, persistent + mandatory, sliding window of confirms",
    ),
}
COLUMNS = (
    "confirmed_per_s",
    "rows",
    "confirmed",
    "duplicates",
    "drain_s",
    "peak_rss_mib",
    "cpu_share",
    "broker_cpu_share",
    "fill_per_s",
    "metrics_confirmed_per_s",
    "other_load_cores",
)
#: Rows per second below which we stop waiting for a fill or a drain: far below any system.
SLOWEST_RATE = 200.0
DEPTH_POLL_S = 0.05


def _bound(rows: int) -> float:
    return rows / SLOWEST_RATE + 30.0


async def _ceiling(bench: BenchRun, system: System, broker: Broker) -> SystemResult:
    options = bench.options
    await broker.reset_sink()
    client = system.name.removeprefix("publish-ceiling-")
    quiet = await bench.wait_for_quiet()
    before, machine_before = broker.watch.read(), bench.machine.read()
    finished = await run_to_end(
        system.name,
        [
            sys.executable,
            "-m",
            "bench.baselines.publish_ceiling",
            "--amqp-url",
            broker.url,
            "--client",
            client,
            "--count",
            str(options.rows),
            "--window",
            str(options.window),
        ],
        log_path=bench.folder(system.name) / "publish.log",
        time_limit=_bound(options.rows),
    )
    after, machine_after = broker.watch.read(), bench.machine.read()
    broker_use = broker.watch.figures(before, after)
    if finished.returncode != 0:
        raise RuntimeError(f"{system.name} exited {finished.returncode}: {finished.output[-2000:]}")
    outcome = msgspec.json.decode(finished.output.strip().splitlines()[-1])
    depth = await broker.sink_depth()
    return SystemResult(
        system=system.name,
        role=system.role,
        summary=system.summary,
        figures={
            "confirmed_per_s": outcome["per_s"],
            "rows": options.rows,
            "confirmed": outcome["confirmed"],
            "nacked": outcome["nacked"],
            "returned": outcome["returned"],
            "drain_s": outcome["seconds"],
            "sink_depth": depth,
            "window": options.window,
            **process_figures(finished.figures),
            "broker_cpu_share": broker_use.cpu_share,
            **machine_figures(
                bench.machine.figures(machine_before, machine_after), finished.figures, broker_use
            ),
            **quiet,
        },
        processes={"publisher": finished.figures},
    )


async def _gateway(bench: BenchRun, system: System, broker: Broker) -> SystemResult:
    options = bench.options
    await broker.reset_sink()
    folder = bench.folder(system.name)
    async with start_system(
        system,
        workdir=folder,
        partners=bench.partners,
        amqp_url=broker.url,
        synchronous=options.synchronous,
    ) as running:
        quiet = await bench.wait_for_quiet()
        await broker.block_publishers(True)
        try:
            fill = await run_to_end(
                "fill",
                [
                    sys.executable,
                    "-m",
                    "bench.harness.openloop",
                    "--url",
                    running.url,
                    "--input",
                    str(bench.load_input()),
                    "--rate",
                    "0",
                    "--count",
                    str(options.rows),
                    "--connections",
                    "64",
                    "--max-seconds",
                    str(_bound(options.rows)),
                    "--out",
                    str(folder / "fill.npz"),
                ],
                log_path=folder / "fill.log",
                time_limit=_bound(options.rows) + 30,
            )
            summary = msgspec.json.decode(fill.output.strip().splitlines()[-1])["summary"]
            accepted = int(summary["ok"])
            fill_s = float(summary["t"])
            print(f"[bench] relay-drain gateway: {accepted} rows accepted in {fill_s:.1f} s")
            leaked = await broker.sink_depth()
            backlog_full = await outbox_backlog(running)
            confirmed_before = relay_confirmed(await running.metrics())
        finally:
            await broker.block_publishers(False)
        print(f"[bench] relay-drain gateway: broker released, outbox backlog {backlog_full}")
        watches = [running.service.watch, broker.watch, bench.machine]
        before = [w.read() for w in watches]
        # Timed between two depth samples, so the CLI's own start-up is not counted.
        first_rise: float | None = None
        reached: float | None = None
        depth = depth_at_rise = leaked
        async with anyio.create_task_group() as tg:
            tg.start_soon(sample_every, watches, 0.5)
            with anyio.move_on_after(_bound(accepted)):
                while reached is None:
                    await anyio.sleep(DEPTH_POLL_S)
                    depth = await broker.sink_depth()
                    now = time.monotonic()
                    if first_rise is None and depth > leaked:
                        first_rise, depth_at_rise = now, depth
                    # Duplicates (republished rows) can fill the sink before the outbox is
                    # empty: done is every row in the sink and none left in the outbox.
                    if depth >= accepted and not await outbox_backlog(running):
                        reached = now
            tg.cancel_scope.cancel()
        after = [w.read() for w in watches]
        metrics = await running.metrics()
        running.service.check_alive()
    gateway_use = running.service.watch.figures(before[0], after[0])
    broker_use = broker.watch.figures(before[1], after[1])
    drained = depth - leaked
    duplicates = max(depth - accepted, 0)
    drain_s = (reached - first_rise) if reached and first_rise else None
    timed = depth - depth_at_rise
    confirmed_after = relay_confirmed(metrics)
    metrics_rate = None
    if confirmed_after is not None and drain_s:
        metrics_rate = round((confirmed_after - (confirmed_before or 0)) / drain_s, 1)
    if leaked:
        bench.note(f"gateway: {leaked} messages reached the sink while publishing was blocked")
    if duplicates:
        bench.note(
            f"gateway: {duplicates} duplicates in the sink (rows republished after the relay's "
            "publish timed out on the blocked connection; excluded from confirmed/s)"
        )
    return SystemResult(
        system=system.name,
        role=system.role,
        summary=system.summary,
        figures={
            "confirmed_per_s": round((timed - duplicates) / drain_s, 1) if drain_s else None,
            "rows": accepted,
            "confirmed": drained,
            "duplicates": duplicates,
            "drain_s": round(drain_s or 0, 3) or None,
            "fill_per_s": round(accepted / fill_s, 1) if fill_s else None,
            "outbox_backlog_full": backlog_full,
            "outbox_backlog_end": metric(metrics, BACKLOG_METRIC),
            "metrics_confirmed_per_s": metrics_rate,
            **process_figures(gateway_use),
            "broker_cpu_share": broker_use.cpu_share,
            **machine_figures(bench.machine.figures(before[2], after[2]), gateway_use, broker_use),
            **quiet,
        },
        processes={"gateway": gateway_use},
    )


async def run(bench: BenchRun) -> None:
    broker = bench.need_broker()
    for name in bench.systems:
        system = CEILINGS.get(name) or SYSTEMS[name]
        try:
            if name in CEILINGS:
                measured = await _ceiling(bench, system, broker)
            else:
                measured = await _gateway(bench, system, broker)
        except Exception as exc:
            measured = failed(system, exc)
        bench.add(measured)
    relay = bench.result.figure("gateway", "confirmed_per_s")
    bench.result.ratios += [
        ratio(
            "relay / aio-pika windowed-confirm ceiling",
            relay,
            bench.result.figure("publish-ceiling-aio-pika", "confirmed_per_s"),
            at_least=1.0,
        ),
        ratio(
            "relay / aiormq windowed-confirm ceiling",
            relay,
            bench.result.figure("publish-ceiling-aiormq", "confirmed_per_s"),
        ),
    ]
    bench.note(
        f"{bench.options.rows} rows; ceilings publish with a sliding window of "
        f"{bench.options.window} confirms; gateway outbox filled behind a broker memory alarm, "
        f"store synchronous={bench.options.synchronous}"
    )


SCENARIO = Scenario(
    name="relay-drain",
    summary="an outbox of 200k rows drained to RabbitMQ with confirms; confirmed publishes/s",
    default_systems=("publish-ceiling-aio-pika", "publish-ceiling-aiormq", "gateway"),
    columns=COLUMNS,
    run=run,
    always_broker=True,
    known_systems=tuple(CEILINGS),
)
