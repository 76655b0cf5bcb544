"""files: CSV lines/s and X12 sets/s accepted durably by the file intake, each beside a ceiling.

Two files, each taken in rounds that alternate the systems so a busy neighbour slows all alike:
a CSV stock feed of `LINES` lines (a cross-reference of `ITEMS` supplier SKUs) and an X12
interchange of `SETS` sets (855, 856 and 810 in turn, the samples of `canonical.samples`).
- `csv-intake`: the file dropped in a partner's local folder and taken by the gateway's own
  poller round (`FilePoller` over `LocalFolderSource`, `FileIntake`, a real `Store` with its
  writer process): listed, fingerprinted, spooled, read row by row into canonical documents,
  staged in chunks and committed to the outbox in one fsync'd transaction, then archived;
- `csv-ceiling`: the same file read with the csv module, each row's SKU looked up and the row
  converted to an `InventoryPosition` by `msgspec.convert`: reading and typing alone;
- `x12-intake`: the interchange taken by the same poller round with the store's X12 port
  (`StoreX12Files`): the interchange key checked and recorded, every set mapped and committed,
  the 997s rendered with the partner's control numbers and put in the outbound folder;
- `x12-decode`: `canonical.x12.decode_file` and rendering the acks, in memory: the codec alone;
- `x12-split-ceiling`: the same bytes split into segments and elements with `bytes.split`,
  nothing checked or mapped: what reading could cost at the least, in Python.
The relay is off (no broker): "accepted" is the outbox commit, what a partner's file is owed
before it is archived. Each intake round takes a new file (another date, another ISA13) into
the same store, so later rounds commit beside the earlier rows, as a running gateway does.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import msgspec

from actors.files.formats import FileRule
from actors.files.intake import FileIntake
from actors.files.poller import ChannelPolicy, FilePoller
from bench.harness.results import SystemResult, ratio
from bench.harness.run import BenchRun, Scenario
from canonical.csv import CsvFeed, ItemCrossReference, cross_reference
from canonical.inventory import InventoryPosition
from canonical.samples import sample_document
from canonical.x12 import (
    ControlNumbers,
    X12Profile,
    decode_file,
    encode_interchange,
    render_acknowledgements,
)
from gateway.edi import StoreX12Files
from gateway.file_channels import StoreReceivedFiles
from gateway.store import Store
from protocols.files import LocalFolderSource

__all__ = ["SCENARIO"]

SETS = 3_000
QUICK_SETS = 300
LINES = 50_000
QUICK_LINES = 2_000
ITEMS = 5_000
ROUNDS = 5
QUICK_ROUNDS = 2
KINDS = ("purchase_order_ack", "advance_ship_notice", "invoice")
COLUMNS = (
    "lines",
    "lines_per_s",
    "sets",
    "sets_per_s",
    "segments_per_s",
    "mib_per_s",
    "best_round_s",
)
AT = dt.datetime(2026, 3, 9, 8, 0, tzinfo=dt.UTC)
PARTNER = "bench-files"
SETTLE_S = 1.0
REPLAY_WINDOW_S = 90 * 86_400.0
MTIME = 1_780_000_000
# The supplier writes as ACMESUPPLY to us, DISTCO; our profile names us as the sender.
SUPPLIER = X12Profile(sender_id="ACMESUPPLY", receiver_id="DISTCO")
OURS = X12Profile(sender_id="DISTCO", receiver_id="ACMESUPPLY")
CSV_HEADER = ("Item", "Warehouse", "Qty", "Unit", "Date")
FEED = CsvFeed(
    document_type="inventory_position",
    columns={
        "Item": "sku",
        "Warehouse": "location_id",
        "Qty": "on_hand",
        "Unit": "uom",
        "Date": "as_of",
    },
    items=cross_reference(
        [
            ItemCrossReference(supplier_sku=f"S-{n}", sku=f"SKU-{n:05d}", stocking_uom="EA")
            for n in range(ITEMS)
        ]
    ),
)

# A reader takes the file of round `n` and says how many documents it made of it.
Reader = Callable[[int], Awaitable[int]]


def x12_file(sets: int, control: int = 1) -> bytes:
    """One interchange of `sets` sets from a supplier, ISA13 `control`, as the gateway gets it."""
    documents = [sample_document(KINDS[n % len(KINDS)], n) for n in range(sets)]
    numbers = ControlNumbers(interchange=control, group=control * 10)
    return encode_interchange(documents, SUPPLIER, numbers, at=AT).data


def csv_file(lines: int, day: int = 1) -> bytes:
    """A stock feed of `lines` positions dated day `day` of December (each round its own)."""
    rows = [",".join(CSV_HEADER)]
    date = f"2026-12-{day:02d}T08:00:00Z"
    for n in range(lines):
        rows.append(f"S-{n % ITEMS},DC{n // ITEMS % 10},{n % 97 + 1},EA,{date}")
    return ("\n".join(rows) + "\n").encode()


class IntakeChannel:
    """A partner's local folder taken by the gateway's poller into `store`, on a moved clock."""

    def __init__(self, root: Path, store: Store, rule: FileRule, *, x12: bool) -> None:
        self.source = LocalFolderSource(root / "partner")
        self.now = 1_000.0
        files = StoreReceivedFiles(store.files)
        port = StoreX12Files(store, replay_window_s=REPLAY_WINDOW_S) if x12 else None
        policy = ChannelPolicy(
            partner_id=PARTNER,
            channel="files",
            rules=(rule,),
            spool_dir=root / "spool",
            settle_s=SETTLE_S,
        )
        policy.spool_dir.mkdir(parents=True, exist_ok=True)
        intake = FileIntake(files, partner_id=PARTNER, channel="files", x12=port)
        self.poller = FilePoller(self.source, intake, files, policy, clock=lambda: self.now)

    async def take(self, name: str, data: bytes) -> tuple[int, float]:
        """Drop `data` as `name`; return the documents committed and the taking round's time.

        The first round only sees the file (the settle check); the second, timed, takes it."""
        path = self.source.folder("incoming") / name
        path.write_bytes(data)
        os.utime(path, (MTIME, MTIME))
        await self.poller.poll_once()
        self.now += SETTLE_S
        started = time.perf_counter()
        report = await self.poller.poll_once()
        elapsed = time.perf_counter() - started
        (taken,) = report.taken
        _, result = taken
        if result.outcome != "accepted" or result.problems:
            raise RuntimeError(f"{name} was not accepted whole: {result}")
        return result.documents, elapsed


def split_only(data: bytes) -> int:
    count = 0
    for segment in data.split(b"~"):
        elements = segment.strip().split(b"*")
        count += elements[0] == b"ST"
    return count


def csv_ceiling(path: Path) -> int:
    items, columns = FEED.items, [FEED.columns[name] for name in CSV_HEADER]
    count = 0
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        for row in reader:
            fields: dict[str, object] = dict(zip(columns, row, strict=True))
            fields["sku"] = items[row[0]].sku
            fields["available"] = fields["on_hand"]
            msgspec.convert(fields, InventoryPosition, strict=False)
            count += 1
    return count


def x12_decode(data: bytes) -> int:
    reading = decode_file(data, file_name="bench.x12", sha256="0" * 64)
    render_acknowledgements(reading, ControlNumbers(interchange=1, group=1), at=AT)
    if not reading.accepted:
        raise RuntimeError(f"the bench file was not accepted: {reading.problems[:3]}")
    return len(reading.decoding.documents)


class Readers:
    """Each system's reader over this run's files, and the stores the intake ones commit to."""

    def __init__(self, bench: BenchRun, lines: int, sets: int) -> None:
        self.lines, self.sets = lines, sets
        self.csv_path = bench.folder("ceiling") / "stock.csv"
        self.csv_path.write_bytes(csv_file(lines))
        self.x12_data = x12_file(sets)
        self.channels: dict[str, IntakeChannel] = {}
        self.last_s = 0.0  # the last intake's taking round, without its settle round

    async def csv_intake(self, n: int) -> int:
        data = csv_file(self.lines, day=n + 1)
        return await self._take("csv-intake", f"stock_{n}.csv", data)

    async def x12_intake(self, n: int) -> int:
        return await self._take("x12-intake", f"supplier_{n}.x12", x12_file(self.sets, n + 1))

    async def _take(self, system: str, name: str, data: bytes) -> int:
        documents, self.last_s = await self.channels[system].take(name, data)
        return documents

    async def csv_ceiling(self, n: int) -> int:
        return csv_ceiling(self.csv_path)

    async def x12_decode(self, n: int) -> int:
        return x12_decode(self.x12_data)

    async def x12_split(self, n: int) -> int:
        return split_only(self.x12_data)


SYSTEMS: dict[str, tuple[str, str, Callable[[Readers], Reader]]] = {
    "csv-intake": ("gateway", "csv", lambda r: r.csv_intake),
    "csv-ceiling": ("ceiling", "csv", lambda r: r.csv_ceiling),
    "x12-intake": ("gateway", "x12", lambda r: r.x12_intake),
    "x12-decode": ("gateway", "x12", lambda r: r.x12_decode),
    "x12-split-ceiling": ("ceiling", "x12", lambda r: r.x12_split),
}
INTAKE_RULES = {
    "csv-intake": FileRule(
        pattern="stock_*.csv", document_type="inventory_position", format="csv", options=FEED
    ),
    "x12-intake": FileRule(
        pattern="*.x12", document_type="purchase_order_ack", format="x12", options=OURS
    ),
}


async def run(bench: BenchRun) -> None:
    quick = bench.options.quick
    readers = Readers(bench, QUICK_LINES if quick else LINES, QUICK_SETS if quick else SETS)
    sizes = {
        "csv": (readers.lines, readers.csv_path.stat().st_size),
        "x12": (readers.sets, len(readers.x12_data)),
    }
    segments = readers.x12_data.count(b"~")
    best: dict[str, float] = {}
    async with AsyncExitStack() as stores:
        for name in (name for name in bench.systems if name in INTAKE_RULES):
            # A store each (its own writer process): one system's rows never slow the other's.
            store = await stores.enter_async_context(Store(bench.folder(name) / "gateway.db"))
            readers.channels[name] = IntakeChannel(
                bench.folder(name), store, INTAKE_RULES[name], x12=name == "x12-intake"
            )
        quiet = await bench.wait_for_quiet()
        rounds = QUICK_ROUNDS if quick else ROUNDS
        machine_start = bench.machine.read()
        for n in range(rounds):
            for name in bench.systems:
                _, kind, reader = SYSTEMS[name]
                started = time.perf_counter()
                found = await reader(readers)(n)
                elapsed = time.perf_counter() - started
                if name in INTAKE_RULES:
                    elapsed = readers.last_s  # the taking round alone, not the settle round
                expected, _ = sizes[kind]
                if found != expected:
                    raise RuntimeError(f"{name} made {found} documents, not {expected}")
                best[name] = min(best.get(name, elapsed), elapsed)
        busy = bench.machine.figures(machine_start, bench.machine.read()).cpu_share
    bench.result.settings |= {"lines": readers.lines, "items": ITEMS, "sets": readers.sets}
    bench.result.settings |= {"rounds": rounds, **quiet, "machine_busy_cores": round(busy, 2)}
    bench.result.notes.append(
        f"The machine was {busy:.2f} cores busy over the rounds (this process and the stores'"
        f" writer processes included), {quiet['busy_before_cores']:.2f} just before them."
    )
    for name in bench.systems:
        role, kind, _ = SYSTEMS[name]
        count, size = sizes[kind]
        seconds = best[name]
        figures: dict[str, float] = {
            "mib_per_s": round(size / seconds / 2**20, 2),
            "best_round_s": round(seconds, 4),
        }
        if kind == "csv":
            figures |= {"lines": count, "lines_per_s": round(count / seconds)}
        else:
            figures |= {
                "sets": count,
                "sets_per_s": round(count / seconds),
                "segments_per_s": round(segments / seconds),
            }
        summary = (__doc__ or "").split("- `" + name + "`: ")[-1].split(";")[0].split(":")[0]
        bench.add(SystemResult(system=name, role=role, summary=summary[:120], figures=figures))
    _ratios(bench)


def _ratios(bench: BenchRun) -> None:
    pairs = [
        ("csv lines/s committed over reading alone", "csv-intake", "csv-ceiling", "lines_per_s"),
        (
            "x12 sets/s committed over splitting alone",
            "x12-intake",
            "x12-split-ceiling",
            "sets_per_s",
        ),
        (
            "x12 sets/s decoded over splitting alone",
            "x12-decode",
            "x12-split-ceiling",
            "sets_per_s",
        ),
        ("x12 sets/s committed over decoded", "x12-intake", "x12-decode", "sets_per_s"),
    ]
    for label, ours, beside, figure in pairs:
        if ours in bench.systems and beside in bench.systems:
            bench.result.ratios.append(
                ratio(
                    label,
                    bench.result.figure(ours, figure),
                    bench.result.figure(beside, figure),
                    detail="the same file, best of the rounds, in one run",
                )
            )


SCENARIO = Scenario(
    name="files",
    summary="CSV lines/s and X12 sets/s committed by the file intake, beside reading alone",
    default_systems=tuple(SYSTEMS),
    columns=COLUMNS,
    run=run,
    known_systems=tuple(SYSTEMS),
)
