"""Join the generator's request times with the consumer's receipts: latency, backlog, verdict.

Both sides record CLOCK_MONOTONIC in nanoseconds, so a receipt minus the time its request was
due is the end-to-end latency, queueing in the generator included (open loop). The backlog at
time t is what was due by t minus what had arrived by t; a step is *sustained* when almost
nothing failed or went missing and that backlog did not grow (see `backlog_growth`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "MAX_BACKLOG_GROWTH",
    "MAX_ERROR_SHARE",
    "MIN_RECEIVED_SHARE",
    "Requests",
    "analyse_step",
    "first_receipts",
    "load_requests",
    "percentiles_ms",
]

#: A sustained step fails at most this share of its requests...
MAX_ERROR_SHARE = 0.001
#: ...delivers at least this share of the accepted ones to the consumer...
MIN_RECEIVED_SHARE = 0.999
#: ...and its backlog grows by less than this share of the offered rate, per second.
MAX_BACKLOG_GROWTH = 0.02
_GRID_S = 0.5

Requests = dict[str, np.ndarray]


def load_requests(path: Path) -> Requests:
    """Read the generator's .npz (seq, due_ns, sent_ns, done_ns, status)."""
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def percentiles_ms(values_ns: np.ndarray, prefix: str = "") -> dict[str, float | None]:
    """Return p50/p99/p99.9/max of nanosecond durations, in milliseconds."""
    names = ("p50", "p99", "p99.9", "max")
    if values_ns.size == 0:
        return {f"{prefix}{n}_ms": None for n in names}
    found = np.percentile(values_ns, [50, 99, 99.9, 100]) / 1e6
    return {f"{prefix}{n}_ms": round(float(v), 3) for n, v in zip(names, found, strict=True)}


def first_receipts(
    requests: Requests, received_seq: np.ndarray, received_ns: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int]:
    """Return (request index, first receipt ns, duplicates) for this step's requests."""
    first_seq = int(requests["seq"][0])
    count = requests["seq"].size
    mine = (received_seq >= first_seq) & (received_seq < first_seq + count)
    index = received_seq[mine] - first_seq
    times = received_ns[mine]
    order = np.argsort(times, kind="stable")
    unique, first = np.unique(index[order], return_index=True)
    return unique, times[order][first], int(index.size - unique.size)


def analyse_step(
    requests: Requests,
    received_seq: np.ndarray,
    received_ns: np.ndarray,
    *,
    offered_rate: float,
) -> dict[str, Any]:
    """Return one step's figures: rates, errors, HTTP and end-to-end latency, backlog, verdict."""
    due, done, status = requests["due_ns"], requests["done_ns"], requests["status"]
    count = due.size
    ok = (status >= 200) & (status < 300)
    accepted = int(ok.sum())
    errors = count - accepted
    index, arrived, duplicates = first_receipts(requests, received_seq, received_ns)
    e2e = arrived - due[index]
    start = int(due.min())
    span_s = max((int(arrived.max()) - start) / 1e9, 1e-9) if arrived.size else None
    slope = backlog_growth(due, arrived)
    figures: dict[str, Any] = {
        "offered_per_s": offered_rate,
        "requests": count,
        "accepted": accepted,
        "errors": errors,
        "statuses": dict(zip(*_counts(status), strict=True)),
        "received": int(index.size),
        "duplicates": duplicates,
        "delivered_per_s": round(index.size / span_s, 1) if span_s else 0.0,
        **percentiles_ms(done[ok] - due[ok], "http_"),
        **percentiles_ms(requests["sent_ns"][ok] - due[ok], "send_lag_"),
        **percentiles_ms(e2e),
        "backlog_growth_per_s": round(slope, 2),
        "backlog_max": int(backlog_curve(due, arrived)[1].max()) if count else 0,
    }
    figures["sustained"] = bool(
        errors <= MAX_ERROR_SHARE * count
        and index.size >= MIN_RECEIVED_SHARE * accepted
        and slope <= MAX_BACKLOG_GROWTH * offered_rate
    )
    return figures


def _counts(values: np.ndarray) -> tuple[list[str], list[int]]:
    found, counts = np.unique(values, return_counts=True)
    return [str(v) for v in found], [int(n) for n in counts]


def backlog_curve(due: np.ndarray, arrived: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (seconds since the first due time, messages due but not yet arrived) on a grid."""
    start, end = int(due.min()), int(due.max())
    grid = np.arange(start, end + 1, int(_GRID_S * 1e9), dtype=np.int64)
    due_by = np.searchsorted(np.sort(due), grid, side="right")
    arrived_by = np.searchsorted(np.sort(arrived), grid, side="right")
    return (grid - start) / 1e9, due_by - arrived_by


def backlog_growth(due: np.ndarray, arrived: np.ndarray) -> float:
    """Return how fast the backlog grew (messages per second) in the step's second half.

    Compared by medians, the second quarter's against the last quarter's, so one late burst
    (a GC pause, a busy neighbour) does not read as growth, while a system that cannot keep up
    (its backlog climbing steadily) does.
    """
    if due.size == 0:
        return 0.0
    t, backlog = backlog_curve(due, arrived)
    length = t[-1]
    second = backlog[(t >= length / 4) & (t < length / 2)]
    last = backlog[t >= 3 * length / 4]
    if second.size == 0 or last.size == 0 or length <= 0:
        return 0.0
    return float((np.median(last) - np.median(second)) / (length / 2))
