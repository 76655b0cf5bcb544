"""The run's PNG: throughput and latency per system, the end-to-end staircase, the soak curve.

matplotlib with the Agg backend (no display). Each scenario names the panels it wants; a panel
reads only the run result, so a plot can be redrawn from a saved JSON
(`python -m bench plot bench/results/<file>.json`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

# The backend is chosen before pyplot loads.
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from bench.harness.results import RunResult

__all__ = ["PANELS", "plot_result"]

Panel = Callable[[Axes, RunResult], None]
_ROLE_COLOURS = {"gateway": "tab:blue", "ceiling": "tab:gray", "peer": "tab:orange"}


def _ok(result: RunResult) -> list[tuple[str, str, dict[str, object]]]:
    return [(s.system, s.role, s.figures) for s in result.systems if s.error is None]


def _bars(ax: Axes, result: RunResult, figure: str, label: str) -> None:
    rows: list[tuple[str, str, float]] = []
    for name, role, figures in _ok(result):
        value = figures.get(figure)
        if isinstance(value, (int, float)):
            rows.append((name, role, float(value)))
    if not rows:
        ax.set_title(f"{label}: no data")
        return
    colours = [_ROLE_COLOURS.get(role, "tab:green") for _, role, _ in rows]
    bars = ax.bar([n for n, _, _ in rows], [v for _, _, v in rows], color=colours)
    ax.bar_label(bars, fmt="{:,.0f}", fontsize=8)
    ax.set_ylabel(label)
    ax.set_title(label)
    ax.tick_params(axis="x", labelrotation=20, labelsize=8)


def accepted_panel(ax: Axes, result: RunResult) -> None:
    _bars(ax, result, "accepted_per_s", "accepted requests/s")


def x12_sets_panel(ax: Axes, result: RunResult) -> None:
    _bars(ax, result, "sets_per_s", "X12 transaction sets/s")


def confirmed_panel(ax: Axes, result: RunResult) -> None:
    _bars(ax, result, "confirmed_per_s", "confirmed publishes/s")


def latency_panel(ax: Axes, result: RunResult) -> None:
    rows = _ok(result)
    percentiles = ("p50_ms", "p99_ms", "p99.9_ms")
    width = 0.8 / len(percentiles)
    for i, p in enumerate(percentiles):
        values = [float(f.get(p) or 0) for _, _, f in rows]  # type: ignore[arg-type]
        ax.bar([j + i * width for j in range(len(rows))], values, width, label=p[:-3])
    ax.set_xticks([j + width for j in range(len(rows))], [n for n, _, _ in rows])
    ax.tick_params(axis="x", labelrotation=20, labelsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("latency (ms, log)")
    ax.set_title("HTTP latency under burst")
    ax.legend(fontsize=8)


def _steps(result: RunResult) -> dict[str, list[list[float]]]:
    return {s.system: s.series.get("steps", []) for s in result.systems if s.series.get("steps")}


def staircase_latency_panel(ax: Axes, result: RunResult) -> None:
    # steps rows: [offered, delivered, p50_ms, p99_ms, sustained]; a step not sustained is
    # marked with a red x.
    for i, (system, rows) in enumerate(_steps(result).items()):
        colour = f"C{i}"
        offered = [r[0] for r in rows]
        ax.plot(offered, [r[2] for r in rows], marker="o", color=colour, label=f"{system} p50")
        ax.plot(
            offered,
            [r[3] for r in rows],
            marker="s",
            linestyle="--",
            color=colour,
            label=f"{system} p99",
        )
        failed = [r for r in rows if not r[4]]
        ax.scatter([r[0] for r in failed], [r[3] for r in failed], marker="x", color="red", s=80)
    ax.axhline(25, color="red", linewidth=0.8, linestyle=":", label="target p99 @2k: 25 ms")
    ax.set_yscale("log")
    ax.set_xlabel("offered msg/s (x: not sustained)")
    ax.set_ylabel("webhook -> consumer (ms, log)")
    ax.set_title("end-to-end latency by offered rate")
    ax.legend(fontsize=7)


def staircase_rate_panel(ax: Axes, result: RunResult) -> None:
    top = 0.0
    for system, rows in _steps(result).items():
        offered = [r[0] for r in rows]
        top = max(top, *offered)
        ax.plot(offered, [r[1] for r in rows], marker="o", label=system)
    ax.plot([0, top], [0, top], color="gray", linewidth=0.8, linestyle=":", label="offered")
    ax.set_xlabel("offered msg/s")
    ax.set_ylabel("delivered msg/s")
    ax.set_title("delivered vs offered")
    ax.legend(fontsize=7)


def _soak(result: RunResult) -> dict[str, list[list[float]]]:
    return {s.system: s.series.get("soak", []) for s in result.systems if s.series.get("soak")}


def soak_rss_panel(ax: Axes, result: RunResult) -> None:
    # soak rows: [t, accepted, received, rss_mib, outbox_backlog, sink_depth]
    for system, rows in _soak(result).items():
        ax.plot([r[1] for r in rows], [r[3] for r in rows], label=system)
    ax.set_xlabel("messages accepted")
    ax.set_ylabel("RSS (MiB)")
    ax.set_title("soak: resident memory")
    ax.legend(fontsize=8)


def soak_backlog_panel(ax: Axes, result: RunResult) -> None:
    for system, rows in _soak(result).items():
        times = [r[0] for r in rows]
        ax.plot(times, [r[1] - r[2] for r in rows], label=f"{system} not yet consumed")
        if any(r[4] >= 0 for r in rows):
            ax.plot([r[0] for r in rows], [max(r[4], 0) for r in rows], label=f"{system} outbox")
    ax.set_xlabel("seconds")
    ax.set_ylabel("messages")
    ax.set_title("soak: backlog")
    ax.legend(fontsize=8)


def isolation_rate_panel(ax: Axes, result: RunResult) -> None:
    _bars(ax, result, "healthy_per_s", "healthy partner delivered/s")


def isolation_latency_panel(ax: Axes, result: RunResult) -> None:
    rows = _ok(result)
    percentiles = ("p50_ms", "p99_ms", "max_ms")
    width = 0.8 / len(percentiles)
    for i, p in enumerate(percentiles):
        values = [float(f.get(p) or 0) for _, _, f in rows]  # type: ignore[arg-type]
        ax.bar([j + i * width for j in range(len(rows))], values, width, label=p[:-3])
    ax.set_xticks([j + width for j in range(len(rows))], [n for n, _, _ in rows])
    ax.set_yscale("log")
    ax.set_ylabel("order due -> healthy partner got it (ms, log)")
    ax.set_title("healthy partner delivery latency")
    ax.legend(fontsize=8)


def isolation_timeline_panel(ax: Axes, result: RunResult) -> None:
    # timeline rows: [seconds since the first order was due, healthy deliveries/s in the bin]
    for s in result.systems:
        rows = s.series.get("timeline", [])
        ax.plot([r[0] for r in rows], [r[1] for r in rows], label=s.system)
    offered = result.settings.get("order_rate")
    if isinstance(offered, (int, float)):
        ax.axhline(offered, color="gray", linewidth=0.8, linestyle=":", label="offered")
    ax.set_xlabel("seconds")
    ax.set_ylabel("healthy partner deliveries/s")
    ax.set_title("healthy partner over time")
    ax.legend(fontsize=8)


def availability_rate_panel(ax: Axes, result: RunResult) -> None:
    _bars(ax, result, "requests_per_s", "availability requests/s")


def workflow_rate_panel(ax: Axes, result: RunResult) -> None:
    _bars(ax, result, "applied_per_s", "thread inputs applied/s")


def workflow_rss_panel(ax: Axes, result: RunResult) -> None:
    _bars(ax, result, "peak_rss_mib", "peak RSS of the process tree, MiB")


PANELS: dict[str, Sequence[Panel]] = {
    "ingest-burst": (accepted_panel, latency_panel),
    "relay-drain": (confirmed_panel,),
    "files": (x12_sets_panel,),
    "end-to-end": (staircase_latency_panel, staircase_rate_panel),
    "soak": (soak_rss_panel, soak_backlog_panel),
    "delivery-isolation": (
        isolation_rate_panel,
        isolation_latency_panel,
        isolation_timeline_panel,
    ),
    "workflow": (workflow_rate_panel, workflow_rss_panel),
    "availability": (availability_rate_panel, latency_panel),
    "orders": (accepted_panel, latency_panel),
}


def plot_result(result: RunResult, path: Path) -> Path:
    """Draw the scenario's panels side by side into `path` (PNG) and return it."""
    panels = PANELS[result.scenario]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.8), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        panel(ax, result)
    fig.suptitle(
        f"{result.scenario}{' (quick)' if result.quick else ''} — {result.started_at} — "
        f"{result.machine.get('cores')} cores, {result.machine.get('cpu', '')}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
