"""Where a system's time goes under load: py-spy samples of its process, summed by function.

`record` runs `py-spy record` against a running system for a while and `summarize` turns the
collapsed stacks into the top functions, by self share (the function itself was on top of the
stack) and by inclusive share (anywhere on the stack). By default only samples of the thread
holding the GIL count: in a one-loop asyncio process that is the work that competes for the
loop, where an idle thread waiting on a socket would otherwise dilute the picture.
"""

from __future__ import annotations

import shutil
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import anyio
import msgspec

from bench.harness.processes import run_to_end

__all__ = ["Profile", "ProfileEntry", "record", "summarize"]

#: How many functions each list keeps.
TOP = 12


class ProfileEntry(msgspec.Struct, frozen=True):
    """One function: its name, the file it is defined in, its share of the samples."""

    function: str
    file: str
    share: float


class Profile(msgspec.Struct, frozen=True, kw_only=True):
    """The summary of one recording."""

    samples: int
    gil_only: bool
    top_self: list[ProfileEntry]
    top_inclusive: list[ProfileEntry]
    raw_path: str  # in the run's work folder: kept with --keep

    def line(self, system: str, count: int = 6) -> str:
        """One line for the run's notes: the top self entries."""
        what = "GIL-holding samples" if self.gil_only else "samples"
        top = ", ".join(f"{e.share:.0%} {e.function} ({e.file})" for e in self.top_self[:count])
        return f"{system} profile ({self.samples} {what}), self: {top}"


def _py_spy() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def _frame_key(frame: str) -> tuple[str, str]:
    """`func (path/file.py:12)` -> ("func", "file.py"); a frame without a place keeps its text."""
    name, _, place = frame.partition(" (")
    file = place.rsplit(":", 1)[0].rsplit("/", 1)[-1] if place else ""
    return name.strip(), file


def summarize(
    lines: Iterable[str], *, top: int = TOP
) -> tuple[int, list[ProfileEntry], list[ProfileEntry]]:
    """Sum py-spy's raw (collapsed) stacks: total samples, top self and top inclusive entries."""
    own: Counter[tuple[str, str]] = Counter()
    anywhere: Counter[tuple[str, str]] = Counter()
    total = 0
    for line in lines:
        stack, _, count_text = line.rstrip("\n").rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        # `--subprocesses` roots every stack at a `process PID:"cmdline"` frame: not a function.
        frames = [_frame_key(f) for f in stack.split(";") if not f.startswith("process ")]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for key in set(frames):
            anywhere[key] += count
    if not total:
        return 0, [], []

    def entries(counter: Counter[tuple[str, str]]) -> list[ProfileEntry]:
        return [
            ProfileEntry(function=name, file=file, share=round(n / total, 4))
            for (name, file), n in counter.most_common(top)
        ]

    return total, entries(own), entries(anywhere)


async def record(
    pid: int, *, seconds: float, rate_hz: int, out: Path, gil_only: bool = True
) -> Profile:
    """Sample process `pid` for `seconds` at `rate_hz`; raise RuntimeError if py-spy cannot."""
    py_spy = _py_spy()
    if py_spy is None:
        raise RuntimeError("py-spy is not installed (pip install py-spy, in the bench extra)")
    argv = [
        py_spy,
        "record",
        "--pid",
        str(pid),
        "--rate",
        str(rate_hz),
        "--duration",
        str(max(1, round(seconds))),
        "--format",
        "raw",
        "--output",
        str(out),
        "--nonblocking",
        "--subprocesses",  # granian serves from a child process
    ]
    if gil_only:
        argv.append("--gil")
    finished = await run_to_end(
        "py-spy", argv, log_path=out.with_suffix(".log"), time_limit=seconds + 30
    )
    raw = anyio.Path(out)
    if not await raw.exists():
        raise RuntimeError(f"py-spy wrote no profile: {finished.output[-500:]}")
    samples, top_self, top_inclusive = summarize((await raw.read_text()).splitlines())
    return Profile(
        samples=samples,
        gil_only=gil_only,
        top_self=top_self,
        top_inclusive=top_inclusive,
        raw_path=str(out),
    )
