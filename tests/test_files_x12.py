"""X12 files through the file intake, against a real store (its writer process) and a real
folder: each set taken once with its provenance, the file archived, and the 997/999/TA1 it is
owed put back in the partner's outbound folder; replays refused with TA1 025; a rejected set
answered with AK3/AK4, raised as an exception, and its file sent to the error folder."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from files_support import PARTNER, Channel, select
from x12_channel import PROFILE, X12Channel, supplier_file
from x12_text import group, interchange, po_set

from actors.files.formats import FileRule
from actors.files.source import Folder
from canonical import decode_envelope
from canonical.files import RemoteFile
from gateway.store import Store
from protocols.files import LocalFolderSource

pytestmark = pytest.mark.anyio


def outbox(db: Path) -> list[tuple[str, bytes]]:
    rows = select(db, "SELECT document_type, body FROM outbox ORDER BY seq")
    return [(str(kind), bytes(body)) for kind, body in rows]  # type: ignore[call-overload]


async def test_an_855_856_810_file_is_taken_once_archived_and_answered_with_a_997(
    tmp_path: Path,
) -> None:
    db = tmp_path / "gateway.db"
    async with Store(db) as store:
        channel = X12Channel(tmp_path, store)
        channel.drop("supplier_1.x12", supplier_file())

        report = await channel.settle()

        assert [(name, r.outcome, r.documents, r.folder) for name, r in report.taken] == [
            ("supplier_1.x12", "accepted", 3, "archive")
        ]
        assert channel.names("archive") == ["supplier_1.x12"]
        (ack,) = channel.sent_back()
        # The same file again: a duplicate, nothing new committed, no second ack.
        channel.drop("supplier_1.x12", supplier_file())
        again = await channel.settle()
        assert [r.outcome for _, r in again.taken] == ["duplicate"]
        assert len(channel.sent_back()) == 1

    rows = outbox(db)
    assert [kind for kind, _ in rows] == [
        "purchase_order_ack",
        "advance_ship_notice",
        "invoice",
    ]
    provenance = [decode_envelope(body).provenance for _, body in rows]
    assert [(p.file, p.interchange, p.group, p.transaction_set) for p in provenance if p] == [
        ("supplier_1.x12", "000000100", "200", "0001"),
        ("supplier_1.x12", "000000100", "201", "0001"),
        ("supplier_1.x12", "000000100", "202", "0001"),
    ]
    # The 997 mirrors the envelope (ids swapped) and accepts each group.
    (interchange_report,) = ack.interchanges
    assert (interchange_report.header.sender_id, interchange_report.header.receiver_id) == (
        "DISTCO",
        "ACMESUPPLY",
    )
    assert [(g.control_number, g.status, g.accepted) for g in ack.functional_acks] == [
        ("200", "A", 1),
        ("201", "A", 1),
        ("202", "A", 1),
    ]


async def test_a_replayed_interchange_control_number_is_refused_with_ta1_025(
    tmp_path: Path,
) -> None:
    db = tmp_path / "gateway.db"
    async with Store(db) as store:
        channel = X12Channel(tmp_path, store)
        channel.drop("first.x12", supplier_file("000000300"))
        await channel.settle()
        # Another file (its own name and mtime), the same ISA13 from the same sender.
        channel.drop("resent.x12", supplier_file("000000300"), mtime=1_780_000_500)

        report = await channel.settle()

        assert [(name, r.outcome, r.folder) for name, r in report.taken] == [
            ("resent.x12", "refused", "error")
        ]
        assert channel.names("error") == ["resent.x12"]
        first_ack, ta1_file = channel.sent_back()
    assert [kind for kind, _ in outbox(db)].count("purchase_order_ack") == 1
    (answer,) = ta1_file.interchanges
    ta1_text = (tmp_path / "partner" / "outbound").iterdir()
    assert any(b"TA1*000000300*" in path.read_bytes() and b"*R*025" in path.read_bytes()
               for path in ta1_text)  # fmt: skip
    assert answer.header.receiver_id == "ACMESUPPLY"
    assert first_ack.functional_acks  # the first file was answered with its 997
    notices = [decode_envelope(b).document for k, b in outbox(db) if k == "exception"]
    assert any("already received" in n.description for n in notices)  # type: ignore[union-attr]


async def test_a_rejected_set_gets_ak3_ak4_an_exception_and_its_file_goes_to_error(
    tmp_path: Path,
) -> None:
    db = tmp_path / "gateway.db"
    bad = po_set("0002", order_date="20261345")
    text = interchange([group([po_set("0001"), bad])], control="000000401")
    async with Store(db) as store:
        channel = X12Channel(tmp_path, store)
        channel.drop("orders.x12", text)

        report = await channel.settle()

        assert [(r.outcome, r.documents, r.problems, r.folder) for _, r in report.taken] == [
            ("accepted", 1, 1, "error")
        ]
        assert channel.names("error") == ["orders.x12"]
        (ack,) = channel.sent_back()
        raw = next((tmp_path / "partner" / "outbound").iterdir()).read_text("latin-1")
    for segment in ("AK3*BEG*2**8~", "AK4*5**8*20261345~", "AK9*P*2*2*1~"):
        assert segment in raw
    kinds = [kind for kind, _ in outbox(db)]
    assert kinds == ["purchase_order", "exception"]
    (notice,) = [decode_envelope(b).document for k, b in outbox(db) if k == "exception"]
    assert "0002" in notice.description  # type: ignore[union-attr]
    assert select(db, "SELECT folder FROM received_files") == [("error",)]
    (outcome,) = ack.functional_acks
    assert [(s.control_number, s.accepted) for s in outcome.sets] == [
        ("0001", True),
        ("0002", False),
    ]


async def test_ack_control_numbers_come_from_the_partners_sequence(tmp_path: Path) -> None:
    db = tmp_path / "gateway.db"
    async with Store(db) as store:
        channel = X12Channel(tmp_path, store)
        channel.drop("a.x12", supplier_file("000000501"))
        channel.drop("b.x12", supplier_file("000000502"), mtime=1_780_000_100)
        await channel.settle()
        numbers = [r.interchanges[0].header.control_number for r in channel.sent_back()]
    assert numbers == ["000000001", "000000002"]
    assert select(db, "SELECT kind, next FROM edi_sequences WHERE partner_id = ? ORDER BY kind",
                  PARTNER) == [("group", 7), ("interchange", 3)]  # fmt: skip


class FlakyPuts:
    """A folder whose next `failures` puts fail as a dropped connection would."""

    def __init__(self, inner: LocalFolderSource, failures: int) -> None:
        self.inner = inner
        self.failures = failures

    async def list_incoming(self) -> list[RemoteFile]:
        return await self.inner.list_incoming()

    async def fetch(self, name: str, destination: Path, *, max_bytes: int) -> None:
        await self.inner.fetch(name, destination, max_bytes=max_bytes)

    async def move(self, name: str, folder: Folder) -> bool:
        return await self.inner.move(name, folder)

    async def put(self, name: str, body: bytes) -> str:
        if self.failures:
            self.failures -= 1
            raise ConnectionResetError("connection lost")
        return await self.inner.put(name, body)


async def test_an_ack_whose_put_failed_is_put_on_the_next_round(tmp_path: Path) -> None:
    async with Store(tmp_path / "gateway.db") as store:
        folder = LocalFolderSource(tmp_path / "partner")
        channel = X12Channel(tmp_path, store, source=FlakyPuts(folder, failures=1))
        channel.drop("supplier_1.x12", supplier_file())

        first = await channel.settle()
        assert [r.outcome for _, r in first.taken] == ["accepted"]
        assert channel.names("outbound") == []
        assert channel.names("archive") == ["supplier_1.x12"]

        later = await channel.poller.poll_once()

        assert later.put == ["997_000000001.x12"]
        assert channel.names("outbound") == ["997_000000001.x12"]
        assert (await channel.poller.poll_once()).put == []


async def test_a_partner_configured_for_999_gets_a_999_with_ik5(tmp_path: Path) -> None:
    profile = msgspec.structs.replace(PROFILE, acknowledgement="999")
    async with Store(tmp_path / "gateway.db") as store:
        channel = X12Channel(tmp_path, store, profile=profile)
        channel.drop("supplier_1.x12", supplier_file())
        await channel.settle()
        (name,) = channel.names("outbound")
        raw = (channel.folder.folder("outbound") / name).read_text("latin-1")

    assert name == "999_000000001.x12"
    assert raw.count("ST*999*") == 3
    assert raw.count("IK5*A~") == 3
    assert "AK1*PR*200*004010~" in raw


async def test_without_the_x12_port_an_x12_file_is_decoded_like_any_format(
    tmp_path: Path,
) -> None:
    db = tmp_path / "gateway.db"
    rules = (FileRule(pattern="*.x12", document_type="invoice", format="x12", options=PROFILE),)
    async with Store(db) as store:
        channel = Channel(tmp_path, store, rules=rules)
        channel.drop("supplier_1.x12", supplier_file())

        report = await channel.settle()

        assert [(r.outcome, r.documents) for _, r in report.taken] == [("accepted", 3)]
        assert channel.names("outbound") == []  # no port: nothing answered
    assert [kind for kind, _ in outbox(db)] == [
        "purchase_order_ack",
        "advance_ship_notice",
        "invoice",
    ]
