"""Start and stop the bench's subprocesses, and measure their memory and CPU from /proc.

Every process is started in a session of its own, so stopping it takes its whole group
(granian's workers, the Erlang VM's helpers) and nothing outlives the scenario. A `Watch`
reads a process and its descendants: resident memory (summed) and CPU seconds (user + system),
which give the peak RSS and the CPU share (1.0 = one core busy) over a measured window.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import msgspec
from anyio.abc import Process

__all__ = [
    "PAGE_SIZE",
    "Finished",
    "MachineWatch",
    "ProcessFigures",
    "Sample",
    "Service",
    "ServiceFailed",
    "Watch",
    "run_to_end",
    "sample_every",
    "service",
    "stop_process",
]

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
#: How long a stopped service gets between SIGTERM and SIGKILL.
STOP_GRACE_S = 15.0
#: How long a service may take to become ready before the scenario gives up.
READY_TIMEOUT_S = 60.0


class ServiceFailed(RuntimeError):
    """A service exited early or did not become ready; the message carries its log's tail."""


class Sample(msgspec.Struct, frozen=True, array_like=True):
    """One reading of a process tree: seconds since the watch began, RSS bytes, CPU seconds.

    `root_cpu` is the CPU seconds of the tree's first process alone (its threads included,
    its children not): the gateway's event loop process without its store writer.
    """

    t: float
    rss: int
    cpu: float
    root_cpu: float = 0.0


class ProcessFigures(msgspec.Struct, frozen=True, kw_only=True):
    """What one process tree used over a measured window."""

    peak_rss_mib: float
    cpu_seconds: float
    wall_seconds: float
    cpu_share: float  # CPU seconds per wall second: 1.0 is one core fully busy
    root_cpu_share: float = 0.0  # the same for the first process alone, without its children


def _read_stat(pid: int) -> tuple[int, float, int] | None:
    """Return (ppid, cpu seconds, rss bytes) of one process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after its last ')'.
    fields = raw[raw.rindex(b")") + 2 :].split()
    ppid = int(fields[1])
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    rss = int(fields[21]) * PAGE_SIZE
    return ppid, cpu, rss


def _children_of() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _read_stat(int(entry))
        if stat is not None:
            tree.setdefault(stat[0], []).append(int(entry))
    return tree


@dataclass
class Watch:
    """Reads the memory and CPU of process `pid` and all its descendants."""

    name: str
    pid: int
    started: float = field(default_factory=time.monotonic)
    samples: list[Sample] = field(default_factory=list)

    def read(self) -> Sample:
        """Take one sample of the tree now (and keep it in `samples`)."""
        tree = _children_of()
        rss, cpu, todo = 0, 0.0, [self.pid]
        root = _read_stat(self.pid)
        while todo:
            pid = todo.pop()
            stat = root if pid == self.pid else _read_stat(pid)
            if stat is not None:
                cpu += stat[1]
                rss += stat[2]
            todo.extend(tree.get(pid, ()))
        sample = Sample(time.monotonic() - self.started, rss, cpu, root[1] if root else 0.0)
        self.samples.append(sample)
        return sample

    def figures(self, since: Sample, until: Sample) -> ProcessFigures:
        """Return the peak RSS and CPU share between two samples of this watch."""
        window = [s for s in self.samples if since.t <= s.t <= until.t] or [until]
        wall = max(until.t - since.t, 1e-9)
        cpu = max(until.cpu - since.cpu, 0.0)
        return ProcessFigures(
            peak_rss_mib=round(max(s.rss for s in window) / 2**20, 1),
            cpu_seconds=round(cpu, 2),
            wall_seconds=round(wall, 2),
            cpu_share=round(cpu / wall, 3),
            root_cpu_share=round(max(until.root_cpu - since.root_cpu, 0.0) / wall, 3),
        )


class MachineWatch(Watch):
    """Reads the whole machine: busy CPU seconds of all cores, memory in use.

    On a shared machine the bench is not alone: busy cores beyond what the bench's own
    processes used is other load, and makes a figure suspect.
    """

    def __init__(self) -> None:
        super().__init__("machine", 0)

    def read(self) -> Sample:
        with open("/proc/stat", "rb") as f:
            cpu = f.readline().split()[1:]
        # user nice system idle iowait irq softirq steal: busy is all but idle and iowait.
        ticks = [int(x) for x in cpu[:8]]
        busy = (sum(ticks) - ticks[3] - ticks[4]) / CLOCK_TICKS
        available = 0
        with open("/proc/meminfo", "rb") as f:
            fields = dict(line.split(b":", 1) for line in f.read().splitlines() if b":" in line)
        total = int(fields[b"MemTotal"].split()[0]) * 1024
        available = int(fields[b"MemAvailable"].split()[0]) * 1024
        sample = Sample(time.monotonic() - self.started, total - available, busy)
        self.samples.append(sample)
        return sample


async def sample_every(watches: Sequence[Watch], interval: float) -> None:
    """Sample every watch each `interval` seconds until cancelled."""
    while True:
        for watch in watches:
            watch.read()
        await anyio.sleep(interval)


@dataclass
class Service:
    """A running subprocess: its handle, its watch, and the file its output goes to."""

    name: str
    process: Process
    log_path: Path
    watch: Watch

    def log_tail(self, size: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except OSError:
            return ""

    def check_alive(self) -> None:
        """Raise `ServiceFailed` if the process has exited."""
        code = self.process.returncode
        if code is not None:
            raise ServiceFailed(f"{self.name} exited with {code}:\n{self.log_tail()}")


def signal_group(pid: int, signum: int) -> None:
    """Send `signum` to the process group `pid` leads (each service leads its own session)."""
    with suppress(ProcessLookupError):
        os.killpg(pid, signum)


async def stop_process(process: Process, grace: float = STOP_GRACE_S) -> None:
    """SIGTERM the group, wait up to `grace` seconds, then SIGKILL it; reap the process."""
    if process.returncode is None:
        signal_group(process.pid, signal.SIGTERM)
        with anyio.move_on_after(grace):
            await process.wait()
    # Children may linger after their leader: the group goes in any case.
    signal_group(process.pid, signal.SIGKILL)
    await process.wait()


@asynccontextmanager
async def service(
    name: str,
    argv: Sequence[str],
    *,
    log_path: Path,
    ready: Callable[[], Awaitable[bool]] | None = None,
    ready_within: float = READY_TIMEOUT_S,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    grace: float = STOP_GRACE_S,
) -> AsyncIterator[Service]:
    """Run `argv` for the duration of the block; yield once `ready()` says so.

    The process's stdout and stderr go to `log_path`; a process that exits before it is ready,
    or is not ready within `ready_within` seconds, raises `ServiceFailed` with the log's tail.
    """
    await anyio.Path(log_path.parent).mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = await anyio.open_process(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
    running = Service(name, process, log_path, Watch(name, process.pid))
    try:
        if ready is not None:
            with anyio.move_on_after(ready_within) as waiting:
                while True:
                    running.check_alive()
                    if await ready():
                        break
                    await anyio.sleep(0.1)
            if waiting.cancelled_caught:
                raise ServiceFailed(
                    f"{name} not ready after {ready_within}s:\n{running.log_tail()}"
                )
        running.watch.read()
        yield running
    finally:
        with anyio.CancelScope(shield=True):
            await stop_process(process, grace)


@dataclass
class Finished:
    """A process that ran to its end: exit code, its output, what it used."""

    returncode: int
    output: str
    figures: ProcessFigures


async def run_to_end(
    name: str,
    argv: Sequence[str],
    *,
    log_path: Path,
    time_limit: float,
    cwd: Path | None = None,
    interval: float = 0.25,
) -> Finished:
    """Run `argv` until it exits, sampling it; past `time_limit` seconds kill it (TimeoutError)."""
    async with service(name, argv, log_path=log_path, cwd=cwd) as running:
        first = last = running.watch.samples[-1]
        with anyio.fail_after(time_limit):
            while running.process.returncode is None:
                last = running.watch.read()
                with anyio.move_on_after(interval):
                    await running.process.wait()
        code = running.process.returncode
    output = await anyio.Path(log_path).read_text(errors="replace")
    return Finished(code, output, running.watch.figures(first, last))
