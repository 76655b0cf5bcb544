"""A run's result: every figure, the machine and versions, the ratios against the targets.

Written as JSON (the record), a markdown table (printed at the end, and saved beside the JSON)
and a PNG plot, all under bench/results/ named `<scenario>-<UTC timestamp>`.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import msgspec

__all__ = [
    "Ratio",
    "RunResult",
    "SystemResult",
    "machine_info",
    "markdown_report",
    "now_iso",
    "ratio",
    "result_stem",
    "versions",
    "write_result",
]

#: Packages whose versions a result records: what runs in the gateway, the peers and the bench.
PACKAGES = (
    "partner-gateway",
    "anyio",
    "uvloop",
    "uvicorn",
    "httptools",
    "msgspec",
    "orjson",
    "aiosqlite",
    "aio-pika",
    "aiormq",
    "prometheus-client",
    "fastapi",
    "starlette",
    "pydantic",
    "faststream",
    "granian",
    "numpy",
    "matplotlib",
)


class Ratio(msgspec.Struct, kw_only=True):
    """One comparison: a ratio (or a figure) and the target it is held to, if any."""

    name: str
    value: float | None
    target: str = ""  # e.g. ">= 0.40"; empty when the ratio is for information
    met: bool | None = None
    detail: str = ""


class SystemResult(msgspec.Struct, kw_only=True):
    """What one system did in the scenario: figures, process usage, series for the plot."""

    system: str
    role: str
    summary: str = ""
    figures: dict[str, Any] = {}
    processes: dict[str, Any] = {}
    series: dict[str, list[list[float]]] = {}
    error: str | None = None


class RunResult(msgspec.Struct, kw_only=True):
    """The whole record of one `python -m bench <scenario>` run."""

    scenario: str
    command: list[str]
    started_at: str
    finished_at: str = ""
    quick: bool = False
    settings: dict[str, Any] = {}
    machine: dict[str, Any] = {}
    versions: dict[str, str] = {}
    systems: list[SystemResult] = []
    ratios: list[Ratio] = []
    notes: list[str] = []
    files: dict[str, str] = {}

    def system(self, name: str) -> SystemResult | None:
        return next((s for s in self.systems if s.system == name and s.error is None), None)

    def figure(self, system: str, name: str) -> Any:
        found = self.system(system)
        return None if found is None else found.figures.get(name)


def ratio(
    name: str,
    numerator: float | None,
    denominator: float | None,
    *,
    at_least: float | None = None,
    below: float | None = None,
    detail: str = "",
) -> Ratio:
    """Return numerator/denominator held to `>= at_least` or `< below` (n/a if one is missing)."""
    if numerator is None or denominator is None or denominator == 0:
        value = None
    else:
        value = round(numerator / denominator, 3)
    return _judged(name, value, at_least=at_least, below=below, detail=detail)


def _judged(
    name: str, value: float | None, *, at_least: float | None, below: float | None, detail: str
) -> Ratio:
    target, met = "", None
    if at_least is not None:
        target = f">= {at_least:g}"
        met = None if value is None else value >= at_least
    elif below is not None:
        target = f"< {below:g}"
        met = None if value is None else value < below
    return Ratio(name=name, value=value, target=target, met=met, detail=detail)


def machine_info() -> dict[str, Any]:
    """Return what the figures depend on: CPU, cores, memory, kernel, Python, OS."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    os_name = ""
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 2**20, 1),
        "kernel": platform.release(),
        "os": os_name,
        "python": platform.python_version(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def versions(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Return the versions of the packages, wrk, SQLite and the tree's git commit."""
    out: dict[str, str] = {}
    for package in PACKAGES:
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = "not installed"
    out["sqlite"] = sqlite3.sqlite_version
    out["wrk"] = _first_line(["wrk", "-v"])
    out["rabbitmq-server"] = _first_line(["dpkg-query", "-W", "-f=${Version}", "rabbitmq-server"])
    out["git_commit"] = _first_line(["git", "rev-parse", "--short", "HEAD"]) or "uncommitted"
    out.update(extra or {})
    return out


def _first_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text and done.returncode in (0, 1) else ""


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def markdown_report(result: RunResult, columns: list[str]) -> str:
    """Return the run as markdown: the ratios against their targets, then key figures."""
    lines = [
        f"## {result.scenario}{' (quick)' if result.quick else ''} — {result.started_at}",
        "",
        "| ratio | value | target | met | detail |",
        "|---|---:|---|---|---|",
    ]
    for r in result.ratios:
        met = "" if r.met is None else ("yes" if r.met else "**no**")
        lines.append(f"| {r.name} | {_fmt(r.value)} | {r.target} | {met} | {r.detail} |")
    lines += ["", "| system | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for s in result.systems:
        if s.error is not None:
            lines.append(f"| {s.system} | failed: {s.error.splitlines()[0][:120]} |")
            continue
        lines.append(
            f"| {s.system} | " + " | ".join(_fmt(s.figures.get(c)) for c in columns) + " |"
        )
    lines += [f"- {note}" for note in result.notes]
    return "\n".join(lines) + "\n"


def write_result(result: RunResult, results_dir: Path, markdown: str) -> dict[str, Path]:
    """Write the JSON and markdown files; return their paths (the plot is written by plots)."""
    results_dir.mkdir(parents=True, exist_ok=True)
    stem = results_dir / f"{result.scenario}-{_stamp(result.started_at)}"
    paths = {"json": stem.with_suffix(".json"), "markdown": stem.with_suffix(".md")}
    result.files.update({k: str(p) for k, p in paths.items()})
    paths["json"].write_bytes(msgspec.json.format(msgspec.json.encode(result), indent=2) + b"\n")
    paths["markdown"].write_text(markdown)
    return paths


def result_stem(result: RunResult, results_dir: Path) -> Path:
    return results_dir / f"{result.scenario}-{_stamp(result.started_at)}"


def _stamp(iso: str) -> str:
    return dt.datetime.fromisoformat(iso).strftime("%Y%m%d-%H%M%S")


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
