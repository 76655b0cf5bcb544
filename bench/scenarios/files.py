"""files (X12 part): transaction sets/s read into canonical documents, beside splitting alone.

One file of `SETS` sets (855, 856 and 810 in turn, the samples of `canonical.samples`), read
in rounds that alternate the systems so a busy neighbour slows both alike:
- `x12`: `canonical.x12.decode_file` (delimiters, envelope checks, mapping to canonical
  documents, validation, the acks owed) followed by rendering those acks;
- `x12-split-ceiling`: the same bytes split into segments and elements with `bytes.split`,
  nothing checked or mapped: what reading could cost at the least, in Python.
Both run in this process (pure CPU, no I/O). Durable acceptance (the intake's commit) and the
CSV half of the scenario belong to the file intake and are not measured here.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

from bench.harness.results import SystemResult, ratio
from bench.harness.run import BenchRun, Scenario
from canonical.samples import sample_document
from canonical.x12 import (
    ControlNumbers,
    X12Profile,
    decode_file,
    encode_interchange,
    render_acknowledgements,
)

__all__ = ["SCENARIO"]

SETS = 3_000
QUICK_SETS = 300
ROUNDS = 5
QUICK_ROUNDS = 2
KINDS = ("purchase_order_ack", "advance_ship_notice", "invoice")
COLUMNS = ("sets", "sets_per_s", "segments_per_s", "mib_per_s", "best_round_s")
AT = dt.datetime(2026, 3, 9, 8, 0, tzinfo=dt.UTC)


def x12_file(sets: int) -> bytes:
    """One interchange of `sets` sets from a supplier, as the gateway would receive it."""
    documents = [sample_document(KINDS[n % len(KINDS)], n) for n in range(sets)]
    profile = X12Profile(sender_id="ACMESUPPLY", receiver_id="DISTCO")
    numbers = ControlNumbers(interchange=1, group=1)
    return encode_interchange(documents, profile, numbers, at=AT).data


def read_with_codec(data: bytes) -> int:
    reading = decode_file(data, file_name="bench.x12", sha256="0" * 64)
    render_acknowledgements(reading, ControlNumbers(interchange=1, group=1), at=AT)
    if not reading.accepted:
        raise RuntimeError(f"the bench file was not accepted: {reading.problems[:3]}")
    return len(reading.decoding.documents)


def split_only(data: bytes) -> int:
    count = 0
    for segment in data.split(b"~"):
        elements = segment.strip().split(b"*")
        count += elements[0] == b"ST"
    return count


SYSTEMS: dict[str, tuple[str, Callable[[bytes], int]]] = {
    "x12": ("gateway", read_with_codec),
    "x12-split-ceiling": ("ceiling", split_only),
}


async def run(bench: BenchRun) -> None:
    quick = bench.options.quick
    sets = QUICK_SETS if quick else SETS
    data = x12_file(sets)
    segments = data.count(b"~")
    best: dict[str, float] = {}
    await bench.wait_for_quiet()
    for _ in range(QUICK_ROUNDS if quick else ROUNDS):
        for name in bench.systems:
            _, read = SYSTEMS[name]
            started = time.perf_counter()
            found = read(data)
            elapsed = time.perf_counter() - started
            if found != sets:
                raise RuntimeError(f"{name} found {found} sets, not {sets}")
            best[name] = min(best.get(name, elapsed), elapsed)
    for name in bench.systems:
        role, _ = SYSTEMS[name]
        seconds = best[name]
        bench.add(
            SystemResult(
                system=name,
                role=role,
                summary=(__doc__ or "").split("- `" + name + "`: ")[-1].split(";")[0][:120],
                figures={
                    "sets": sets,
                    "sets_per_s": round(sets / seconds),
                    "segments_per_s": round(segments / seconds),
                    "mib_per_s": round(len(data) / seconds / 2**20, 2),
                    "best_round_s": round(seconds, 4),
                },
            )
        )
    bench.result.ratios.append(
        ratio(
            "x12 sets/s over splitting alone",
            bench.result.figure("x12", "sets_per_s"),
            bench.result.figure("x12-split-ceiling", "sets_per_s"),
            detail="what checking, mapping and validating costs beside reading the bytes",
        )
    )


SCENARIO = Scenario(
    name="files",
    summary="X12 sets/s read into canonical documents, beside segment splitting alone",
    default_systems=tuple(SYSTEMS),
    columns=COLUMNS,
    run=run,
    known_systems=tuple(SYSTEMS),
)
