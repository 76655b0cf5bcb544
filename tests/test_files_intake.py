"""The file intake and its poller against a real store (its writer process) and a real folder:
each complete file committed once with every document it carries, then moved."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from files_support import HEADER, PARTNER, Channel, FlakyMoves, row, select

from actors.files.formats import FileRule
from actors.files.intake import FileIntake
from canonical import ExceptionNotice, InventoryPosition, decode_envelope, sample_document
from canonical.files import FileDocument, FileRow, Fingerprint, Provenance
from gateway.file_channels import StoreReceivedFiles
from gateway.store import Store

pytestmark = pytest.mark.anyio


def outbox(db: Path) -> list[tuple[str, bytes]]:
    rows = select(db, "SELECT document_type, body FROM outbox ORDER BY seq")
    return [(str(kind), bytes(body)) for kind, body in rows]  # type: ignore[call-overload]


def documents(db: Path) -> list[InventoryPosition]:
    envelopes = (decode_envelope(body) for kind, body in outbox(db) if kind == "inventory_position")
    return [e.document for e in envelopes if isinstance(e.document, InventoryPosition)]


def exceptions(db: Path) -> list[ExceptionNotice]:
    return [
        e.document
        for e in (decode_envelope(body) for kind, body in outbox(db) if kind == "exception")
        if isinstance(e.document, ExceptionNotice)
    ]


async def test_a_csv_file_is_committed_once_with_its_provenance_then_archived(
    tmp_path: Path,
) -> None:
    db = tmp_path / "gateway.db"
    async with Store(db) as store:
        channel = Channel(tmp_path, store)
        channel.drop("stock_1.csv", HEADER + row("S-1", "2", "CS") + row("S-2", "5", "EA"))

        report = await channel.settle()

        assert [(name, r.outcome, r.documents) for name, r in report.taken] == [
            ("stock_1.csv", "accepted", 2)
        ]
    envelopes = [decode_envelope(body) for _, body in outbox(db)]
    assert [(e.document.sku, e.document.on_hand, e.document.uom) for e in envelopes] == [  # type: ignore[union-attr]
        ("SKU-1", 24, "EA"),
        ("SKU-2", 5, "EA"),
    ]
    assert [(e.provenance.file, e.provenance.line) for e in envelopes if e.provenance] == [
        ("stock_1.csv", 2),
        ("stock_1.csv", 3),
    ]
    assert {e.partner_id for e in envelopes} == {PARTNER}
    assert len({e.idempotency_key for e in envelopes}) == 2
    assert channel.names("incoming") == []
    assert channel.names("archive") == ["stock_1.csv"]
    assert select(db, "SELECT state, documents, move FROM received_files") == [
        ("accepted", 2, "done")
    ]


async def test_the_same_file_dropped_again_commits_nothing_new(tmp_path: Path) -> None:
    db = tmp_path / "gateway.db"
    text = HEADER + row("S-1")
    async with Store(db) as store:
        channel = Channel(tmp_path, store)
        channel.drop("stock_1.csv", text)
        await channel.settle()
        channel.drop("stock_1.csv", text)  # same name, size, mtime and content

        report = await channel.settle()

    assert [(r.outcome, r.folder) for _, r in report.taken] == [("duplicate", "archive")]
    assert len(outbox(db)) == 1
    assert channel.names("archive") == ["stock_1-1.csv", "stock_1.csv"]  # never overwritten
    assert channel.names("incoming") == []


async def test_a_reupload_under_the_same_name_with_new_content_is_a_new_file(
    tmp_path: Path,
) -> None:
    db = tmp_path / "gateway.db"
    async with Store(db) as store:
        channel = Channel(tmp_path, store)
        channel.drop("stock_1.csv", HEADER + row("S-1", "2"))
        await channel.settle()
        channel.drop("stock_1.csv", HEADER + row("S-1", "3"))  # same size, same mtime

        report = await channel.settle()

    assert [r.outcome for _, r in report.taken] == ["accepted"]
    assert [d.on_hand for d in documents(db)] == [24, 36]
    assert len(select(db, "SELECT id FROM received_files")) == 2


async def test_bad_rows_become_exceptions_naming_line_and_reason_while_good_rows_go_on(
    tmp_path: Path,
) -> None:
    db = tmp_path / "gateway.db"
    text = (
        HEADER
        + row("S-1", "1")
        + row("S-9", "1")  # line 3: not in the cross-reference
        + row("S-1", "lots")  # line 4: not a number
        + "S-1,DC1\n"  # line 5: too few fields
        + row("S-2", "4", "EA")
    )
    async with Store(db) as store:
        channel = Channel(tmp_path, store)
        channel.drop("stock_1.csv", text)

        report = await channel.settle()

    assert [(r.outcome, r.documents, r.problems) for _, r in report.taken] == [("accepted", 2, 3)]
    assert [d.sku for d in documents(db)] == ["SKU-1", "SKU-2"]
    notices = exceptions(db)
    assert [n.line_number for n in notices] == [3, 4, 5]
    assert [n.description.startswith(f"stock_1.csv line {n.line_number}:") for n in notices] == [
        True,
        True,
        True,
    ]
    assert "not in the cross-reference" in notices[0].description
    assert "not a number" in notices[1].description
    assert "expected 5 fields" in notices[2].description
    assert channel.names("archive") == ["stock_1.csv"]


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("Item,Warehouse,Qty,Date\n", "missing columns: Unit"),
        ("Item,Warehouse,Qty,Unit,Date,Colour\n", "unknown columns: Colour"),
        ("", "no header"),
    ],
)
async def test_a_bad_header_refuses_the_whole_file_to_the_error_folder(
    tmp_path: Path, header: str, reason: str
) -> None:
    db = tmp_path / "gateway.db"
    async with Store(db) as store:
        channel = Channel(tmp_path, store)
        channel.drop("stock_1.csv", header + (row("S-1") if header else ""))

        report = await channel.settle()

    assert [(r.outcome, r.folder) for _, r in report.taken] == [("refused", "error")]
    assert documents(db) == []
    [notice] = exceptions(db)
    assert reason in notice.description
    assert channel.names("error") == ["stock_1.csv"]
    assert select(db, "SELECT state, reason FROM received_files")[0][0] == "refused"


async def test_a_file_with_the_bom_of_excel_csv_utf8_is_read(tmp_path: Path) -> None:
    db = tmp_path / "gateway.db"
    async with Store(db) as store:
        channel = Channel(tmp_path, store)
        channel.drop("stock_1.csv", "\ufeff" + HEADER.replace(",", " , ") + row("S-1"))

        report = await channel.settle()

    assert [r.documents for _, r in report.taken] == [1]


async def test_a_file_still_growing_is_not_taken(tmp_path: Path) -> None:
    db = tmp_path / "gateway.db"
    async with Store(db) as store:
        channel = Channel(tmp_path, store)
        path = channel.drop("stock_1.csv", HEADER + row("S-1"), mtime=1_780_000_000)
        first = await channel.poller.poll_once()
        with path.open("a", encoding="utf-8") as handle:
            handle.write(row("S-2", "1", "EA"))
        os.utime(path, (1_780_000_001, 1_780_000_001))
        channel.clock.now += 5

        grown = await channel.poller.poll_once()  # changed since the last listing: wait
        channel.clock.now += 0.5
        early = await channel.poller.poll_once()  # unchanged, but not for settle_s yet
        channel.clock.now += 0.5
        settled = await channel.poller.poll_once()

    assert (first.taken, grown.taken, early.taken) == ([], [], [])
    assert (grown.waiting, early.waiting) == (1, 1)
    assert [r.documents for _, r in settled.taken] == [2]


async def test_temporary_and_hidden_names_are_never_taken(tmp_path: Path) -> None:
    db = tmp_path / "gateway.db"
    async with Store(db) as store:
        channel = Channel(tmp_path, store)
        for name in ("stock_1.csv.tmp", "stock_2.csv.part", ".stock_3.csv"):
            channel.drop(name, HEADER + row())

        report = await channel.settle()

    assert (report.taken, report.waiting) == ([], 0)
    assert outbox(db) == []


async def test_a_move_lost_after_the_commit_happens_next_round_without_a_duplicate(
    tmp_path: Path,
) -> None:
    db = tmp_path / "gateway.db"
    async with Store(db) as store:
        channel = Channel(tmp_path, store)
        flaky = FlakyMoves(channel.folder, failures=1)
        channel.poller.source = flaky
        channel.drop("stock_1.csv", HEADER + row("S-1"))

        await channel.settle()  # committed; the move fails
        committed = select(db, "SELECT state, move FROM received_files")
        still_there = channel.names("incoming")
        channel.clock.now += 60
        retried = await channel.poller.poll_once()

    assert committed == [("accepted", "pending")]
    assert still_there == ["stock_1.csv"]
    assert retried.moved == 1
    assert retried.taken == []
    assert flaky.moves == [("stock_1.csv", "archive")]
    assert len(outbox(db)) == 1
    assert channel.names("archive") == ["stock_1.csv"]
    assert select(db, "SELECT move FROM received_files") == [("done",)]


async def test_a_pending_move_whose_name_was_reused_leaves_the_new_file_alone(
    tmp_path: Path,
) -> None:
    db = tmp_path / "gateway.db"
    async with Store(db) as store:
        channel = Channel(tmp_path, store)
        channel.poller.source = FlakyMoves(channel.folder, failures=1)
        path = channel.drop("stock_1.csv", HEADER + row("S-1", "2"))
        await channel.settle()  # committed; the move fails
        path.unlink()  # the partner cleaned up and uploaded a new one under the name
        channel.drop("stock_1.csv", HEADER + row("S-1", "30"), mtime=1_780_000_100)

        await channel.settle()

    assert [d.on_hand for d in documents(db)] == [24, 360]
    assert channel.names("archive") == ["stock_1.csv"]
    assert select(db, "SELECT move FROM received_files") == [("done",), ("done",)]


async def test_a_file_half_staged_before_a_crash_is_taken_whole_next_time(
    tmp_path: Path,
) -> None:
    db = tmp_path / "gateway.db"
    text = HEADER + "".join(row("S-1", str(n)) for n in range(1, 8))
    async with Store(db) as store:
        channel = Channel(tmp_path, store, stage_rows=2)
        path = channel.drop("stock_1.csv", text)
        # What a crash mid-file leaves: the fingerprint claimed, a chunk staged, no commit.
        key = Fingerprint(
            partner_id=PARTNER,
            channel="files",
            path="stock_1.csv",
            size=path.stat().st_size,
            mtime=1_780_000_000,
            sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        )
        file_id = await store.files.begin(key)
        assert isinstance(file_id, int)
        await store.files.stage(
            file_id,
            [
                FileRow(
                    position=1,
                    message_id="left-over",
                    document_type="inventory_position",
                    schema_version=1,
                    routing_key="inventory_position.acme",
                    correlation_id="left-over",
                    causation_id=None,
                    idempotency_key="left-over",
                    body=b"{}",
                )
            ],
        )

        report = await channel.settle()

    assert [(r.outcome, r.documents) for _, r in report.taken] == [("accepted", 7)]
    assert [d.on_hand for d in documents(db)] == [12 * n for n in range(1, 8)]
    assert select(db, "SELECT count(*) FROM received_file_rows") == [(0,)]


async def test_a_file_over_its_problem_bound_is_refused_whole(tmp_path: Path) -> None:
    db = tmp_path / "gateway.db"
    async with Store(db) as store:
        channel = Channel(tmp_path, store, max_problems=2)
        channel.drop("stock_1.csv", HEADER + row("S-1") + row("S-9") * 3)

        report = await channel.settle()

    assert [(r.outcome, r.reason) for _, r in report.taken] == [("refused", "too_many_problems")]
    assert documents(db) == []
    assert len(exceptions(db)) == 1


async def test_a_file_past_its_size_bound_goes_to_the_error_folder_unread(tmp_path: Path) -> None:
    db = tmp_path / "gateway.db"
    async with Store(db) as store:
        channel = Channel(tmp_path, store, max_file_bytes=64)
        channel.drop("stock_1.csv", HEADER + row() * 10)

        report = await channel.settle()

    assert [(r.outcome, r.reason) for _, r in report.taken] == [("refused", "unreadable")]
    assert channel.names("error") == ["stock_1.csv"]


async def test_a_file_no_rule_matches_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "gateway.db"
    async with Store(db) as store:
        channel = Channel(tmp_path, store)
        channel.drop("prices.xlsx", "not ours")

        report = await channel.settle()

    assert [(r.outcome, r.reason) for _, r in report.taken] == [("refused", "no_rule")]
    assert channel.names("error") == ["prices.xlsx"]


def test_an_intake_needs_positive_bounds() -> None:
    with pytest.raises(ValueError, match="stage_rows"):
        FileIntake(
            StoreReceivedFiles(msgspec.NODEFAULT),  # type: ignore[arg-type]
            partner_id=PARTNER,
            channel="files",
            stage_rows=0,
        )


def _po_acks(path: Path, *, file_name: str, sha256: str, rule: FileRule) -> Iterator[FileDocument]:
    """A format of one PO number per line: what an X12 decoder plugs in like."""
    for line, number in enumerate(path.read_text().split(), start=1):
        document = sample_document("purchase_order_ack")
        yield FileDocument(
            document=msgspec.structs.replace(document, po_number=number),
            provenance=Provenance(file=file_name, sha256=sha256, transaction_set=f"{line:04d}"),
        )


async def test_a_new_format_plugs_into_the_intake_as_one_decoder(tmp_path: Path) -> None:
    db = tmp_path / "gateway.db"
    rule = FileRule(pattern="*.acks", document_type="purchase_order_ack", format="acks")
    async with Store(db) as store:
        channel = Channel(tmp_path, store, decoders={"acks": _po_acks}, rules=(rule,))
        channel.drop("today.acks", "PO-1\nPO-2\n")

        report = await channel.settle()

    assert [(r.outcome, r.documents) for _, r in report.taken] == [("accepted", 2)]
    envelopes = [decode_envelope(body) for _, body in outbox(db)]
    assert [e.document_type for e in envelopes] == [
        "purchase_order_ack",
        "purchase_order_ack",
    ]
    assert [e.provenance.transaction_set for e in envelopes if e.provenance] == ["0001", "0002"]


async def test_after_a_restart_between_commit_and_move_the_file_moves_and_nothing_repeats(
    tmp_path: Path,
) -> None:
    db = tmp_path / "gateway.db"
    async with Store(db) as store:
        channel = Channel(tmp_path, store)
        channel.poller.source = FlakyMoves(channel.folder, failures=1)  # dies before the move
        channel.drop("stock_1.csv", HEADER + row("S-1"))
        await channel.settle()
    async with Store(db) as store:  # the gateway again: a new store and a poller that knows nothing
        restarted = Channel(tmp_path, store)

        first = await restarted.poller.poll_once()
        later = await restarted.settle()

    assert (first.moved, first.taken) == (1, [])
    assert (later.moved, later.taken) == (0, [])
    assert len(outbox(db)) == 1
    assert restarted.names("archive") == ["stock_1.csv"]
    assert restarted.names("incoming") == []
