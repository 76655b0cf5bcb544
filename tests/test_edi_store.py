"""The store's X12 state on its own: sequences, the replay window, and what a purge keeps."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from files_support import PARTNER, select
from x12_channel import X12Channel, supplier_file

from canonical import sample_document
from canonical.x12 import X12Profile
from gateway.edi import StoreX12Files
from gateway.store import Store
from gateway.store.edi import MAX_CONTROL_NUMBER, MIGRATION, reserve_numbers

pytestmark = pytest.mark.anyio

PROFILE = X12Profile(sender_id="DISTCO", receiver_id="ACMESUPPLY")


def test_a_sequence_hands_out_consecutive_numbers_and_wraps_to_one() -> None:
    conn = sqlite3.connect(":memory:")
    for statement in MIGRATION:
        conn.execute(statement)

    first = reserve_numbers("acme", "interchange", 3, conn)
    second = reserve_numbers("acme", "interchange", 1, conn)
    other = reserve_numbers("zenith", "interchange", 1, conn)
    conn.execute(
        "UPDATE edi_sequences SET next = ? WHERE partner_id = 'acme'", (MAX_CONTROL_NUMBER,)
    )
    last = reserve_numbers("acme", "interchange", 1, conn)
    wrapped = reserve_numbers("acme", "interchange", 2, conn)

    assert (first, second, other, last, wrapped) == (1, 4, 1, MAX_CONTROL_NUMBER, 1)


async def test_a_control_number_seen_outside_the_window_is_not_a_replay(tmp_path: Path) -> None:
    async with Store(tmp_path / "gateway.db") as store:
        channel = X12Channel(tmp_path, store)
        now = [1_800_000_000.0]
        channel.poller.intake.x12 = StoreX12Files(store, replay_window_s=60, clock=lambda: now[0])
        channel.drop("first.x12", supplier_file("000000700"))
        await channel.settle()
        now[0] += 3600  # past the window
        channel.drop("again.x12", supplier_file("000000700"), mtime=1_780_000_100)

        report = await channel.settle()

    assert [r.outcome for _, r in report.taken] == ["accepted"]


async def test_a_purge_keeps_files_to_put_and_sets_awaiting_an_answer(tmp_path: Path) -> None:
    db = tmp_path / "gateway.db"
    async with Store(db) as store:
        channel = X12Channel(tmp_path, store)
        channel.drop("supplier_1.x12", supplier_file())
        await channel.settle()  # a key seen, a 997 put
        po = sample_document("purchase_order", 1)
        await store.edi.queue_interchange(PARTNER, "files", [("m-1", "c-1", po)], PROFILE)

        removed = await store.edi.purge(seen_before=2e9, settled_before=2e9, limit=100)

    assert removed == 2  # the key and the 997 file put
    assert select(db, "SELECT count(*) FROM edi_interchanges") == [(0,)]
    assert select(db, "SELECT kind, state FROM edi_outgoing") == [("interchange", "pending")]
    assert select(db, "SELECT status FROM edi_sent_sets") == [("unacknowledged",)]
