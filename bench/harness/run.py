"""One bench run: its options, its working folder and broker, and writing its result.

`execute(scenario, options)` is the whole life of `python -m bench <scenario>`: make a working
folder under bench/results/tmp/, start a RabbitMQ node if any system needs one, run the
scenario within its time bound, then write the JSON, markdown and PNG, print the ratio table,
and remove the working folder (unless `--keep`). Every process started on the way is stopped
by the context manager that started it, whether the scenario ends or fails.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import anyio
import msgspec

from bench.harness.broker import Broker, running_broker
from bench.harness.documents import BenchPartner, OrderTemplate, bench_partners, order_template
from bench.harness.openloop import write_load_input
from bench.harness.plots import plot_result
from bench.harness.processes import MachineWatch
from bench.harness.results import (
    RunResult,
    SystemResult,
    machine_info,
    markdown_report,
    now_iso,
    result_stem,
    versions,
    write_result,
)
from bench.harness.systems import SYSTEMS
from bench.harness.wrk import write_wrk_input

__all__ = ["DEFAULT_RESULTS_DIR", "BenchRun", "Options", "Scenario", "execute"]

DEFAULT_RESULTS_DIR = Path(__file__).resolve().parents[1] / "results"
#: How long one reading of the machine's load lasts while waiting for quiet.
QUIET_PROBE_S = 2.0
#: Messages through a fresh node before any system meets it (see `Broker.warm_up`).
BROKER_WARM_UP = 20_000


class Options(msgspec.Struct, frozen=True, kw_only=True):
    """Every knob of a run; each scenario reads the ones it has. Defaults are the issue's."""

    quick: bool = False
    systems: tuple[str, ...] = ()  # empty: the scenario's own list
    partners: int = 16
    synchronous: Literal["FULL", "NORMAL"] = "FULL"
    results_dir: str = str(DEFAULT_RESULTS_DIR)
    keep: bool = False
    max_minutes: float = 180.0  # the whole run's hard bound
    # On a shared machine: before each measurement, wait up to this long for the rest of the
    # machine to fall under `quiet_cores` busy cores.
    quiet_wait_s: float = 60.0
    quiet_cores: float = 0.3
    # ingest-burst
    duration_s: float = 10.0
    connections: int = 64
    threads: int = 2
    profile_hz: int = 0  # py-spy samples per second on each system under load; 0: none
    # relay-drain
    rows: int = 200_000
    window: int = 512
    # end-to-end
    rates: tuple[int, ...] = (1000, 2000, 5000)
    step_s: float = 60.0
    max_rate: int = 50_000
    rate_growth: float = 1.5  # after the listed rates, each step offers this much more
    e2e_connections: int = 256
    # soak
    count: int = 1_000_000
    rate: float = 2000.0
    sample_s: float = 3.0
    # delivery-isolation: ERP purchase orders at a fixed rate, each to two partners
    orders: int = 12_000
    order_rate: float = 200.0
    hang_timeout_s: float = 2.0  # the partners' `timeout_s`: how long a hanging call holds
    # workflow: ERP orders each opening a purchase-order thread
    workflow_threads: int = 100_000
    workflow_rate: float = 0.0  # orders published per second; 0: as fast as confirms come
    passivate_s: float = 5.0  # the threads' [workflow] passivate_after_s

    def quickened(self) -> Options:
        """Return these options cut to a couple of seconds per scenario (`--quick`)."""
        return msgspec.structs.replace(
            self,
            quick=True,
            duration_s=2.0,
            rows=5_000,
            rates=(1000, 2000),
            step_s=2.0,
            max_rate=2000,
            count=10_000,
            rate=2000.0,
            sample_s=0.5,
            orders=1_000,
            workflow_threads=2_000,
            max_minutes=15.0,
            quiet_wait_s=0.0,
        )


@dataclass
class BenchRun:
    """What a scenario gets: options, folder, broker, the orders and partners, the result."""

    options: Options
    workdir: Path
    result: RunResult
    systems: tuple[str, ...]
    template: OrderTemplate = field(default_factory=order_template)
    token: str = field(default_factory=lambda: os.urandom(4).hex())
    broker: Broker | None = None
    partners: list[BenchPartner] = field(default_factory=list)
    machine: MachineWatch = field(default_factory=MachineWatch)

    def __post_init__(self) -> None:
        if not self.partners:
            self.partners = bench_partners(self.options.partners)

    def folder(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def need_broker(self) -> Broker:
        if self.broker is None:
            raise RuntimeError("this scenario runs without a broker")
        return self.broker

    def wrk_input(self) -> Path:
        """Return the wrk script's input (written on first use)."""
        path = self.workdir / "wrk-input.lua"
        if not path.exists():
            write_wrk_input(path, run=self.token, template=self.template, partners=self.partners)
        return path

    def load_input(self) -> Path:
        """Return the open-loop generator's input (written on first use)."""
        path = self.workdir / "load-input.json"
        if not path.exists():
            write_load_input(path, run=self.token, template=self.template, partners=self.partners)
        return path

    async def wait_for_quiet(self) -> dict[str, float]:
        """Wait (bounded) until the machine is nearly idle; return how busy it was and how long.

        Another engineer's test run on the same two cores halves every figure; waiting for it
        to end is cheaper than a run that compares nothing. The bench's own idle processes
        (broker, system under test) count as busy too, so the threshold is not zero.
        """
        started = anyio.current_time()
        deadline = started + self.options.quiet_wait_s
        while True:
            first = self.machine.read()
            await anyio.sleep(QUIET_PROBE_S)
            busy = self.machine.figures(first, self.machine.read()).cpu_share
            now = anyio.current_time()
            if busy <= self.options.quiet_cores or now >= deadline:
                return {"busy_before_cores": busy, "waited_for_quiet_s": round(now - started, 1)}

    def add(self, system: SystemResult) -> None:
        self.result.systems.append(system)
        status = "failed: " + system.error.splitlines()[0] if system.error else "done"
        print(f"[bench] {self.result.scenario}: {system.system} {status}", flush=True)

    def note(self, text: str) -> None:
        self.result.notes.append(text)


@dataclass(frozen=True)
class Scenario:
    """A named scenario: the systems it compares, the figures it tabulates, how it runs."""

    name: str
    summary: str
    default_systems: tuple[str, ...]
    columns: tuple[str, ...]
    run: Callable[[BenchRun], Awaitable[None]]
    always_broker: bool = False
    known_systems: tuple[str, ...] = ()  # systems beyond SYSTEMS this scenario knows
    details: Callable[[RunResult], str] | None = None  # more markdown after the tables

    def needs_broker(self, systems: tuple[str, ...]) -> bool:
        return self.always_broker or any(SYSTEMS[s].uses_broker for s in systems if s in SYSTEMS)


async def execute(scenario: Scenario, options: Options) -> RunResult:
    """Run `scenario` with `options`, write its files, print its table, return the result."""
    systems = options.systems or scenario.default_systems
    unknown = [s for s in systems if s not in SYSTEMS and s not in scenario.known_systems]
    if unknown:
        raise ValueError(f"{scenario.name} does not know system(s) {', '.join(unknown)}")
    results_dir = Path(options.results_dir)
    started = now_iso()
    workdir = results_dir / "tmp" / f"{scenario.name}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    workdir.mkdir(parents=True, exist_ok=True)
    result = RunResult(
        scenario=scenario.name,
        command=["python", "-m", "bench", *sys.argv[1:]],
        started_at=started,
        quick=options.quick,
        settings=msgspec.to_builtins(options),
        machine=machine_info(),
    )
    bench = BenchRun(options, workdir, result, systems)
    result.settings["order_template"] = bench.template.source
    result.settings["order_bytes"] = bench.template.size
    print(f"[bench] {scenario.name}: {', '.join(systems)} (work folder {workdir})", flush=True)
    try:
        async with AsyncExitStack() as stack:
            if scenario.needs_broker(systems):
                print("[bench] starting RabbitMQ", flush=True)
                warm_up = BROKER_WARM_UP // 10 if options.quick else BROKER_WARM_UP
                bench.broker = await stack.enter_async_context(
                    running_broker(workdir / "rmq", warm_up)
                )
            with anyio.fail_after(options.max_minutes * 60):
                await scenario.run(bench)
    finally:
        result.finished_at = now_iso()
        result.versions = versions()
        markdown = markdown_report(result, list(scenario.columns))
        if scenario.details is not None:
            markdown += "\n" + scenario.details(result)
        paths = write_result(result, results_dir, markdown)
        try:
            plot = plot_result(result, result_stem(result, results_dir).with_suffix(".png"))
            result.files["plot"] = str(plot)
            paths = write_result(result, results_dir, markdown)
        except Exception as exc:  # a plot that fails must not lose the figures
            print(f"[bench] plot failed: {exc!r}", file=sys.stderr)
        print(markdown)
        print(f"[bench] wrote {', '.join(str(p) for p in paths.values())}", flush=True)
        if not options.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return result
