"""The store's X12 state on its own: sequences, the replay window, and what a purge keeps."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest
from files_support import PARTNER, select
from store_samples import Clock
from x12_channel import X12Channel, supplier_file

from canonical import sample_document
from canonical.x12 import X12Profile
from gateway.edi import StoreX12Files
from gateway.store import Retention, Store
from gateway.store.edi import MAX_CONTROL_NUMBER, MIGRATION, reserve_numbers

pytestmark = pytest.mark.anyio

PROFILE = X12Profile(sender_id="DISTCO", receiver_id="ACMESUPPLY")
HOUR = 3600.0


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


async def test_the_purge_takes_settled_x12_rows_past_retention_and_keeps_the_rest(
    tmp_path: Path,
) -> None:
    db = tmp_path / "gateway.db"
    clock = Clock()
    retention = Retention(x12_s=HOUR, x12_replay_window_s=2 * HOUR)
    async with Store(db, clock=clock, retention=retention) as store:
        channel = X12Channel(tmp_path, store)
        channel.drop("supplier_1.x12", supplier_file())
        await channel.settle()  # a key seen, a 997 put
        po = sample_document("purchase_order", 1)
        for n in (1, 2):  # two interchanges to send (pending), a set each
            await store.edi.queue_interchange(PARTNER, "files", [(f"m-{n}", "c", po)], PROFILE)
        (answered, awaited) = await store.edi.sent()
        # The partner's 997 accepted the first set (what `finish_x12_file` records).
        with contextlib.closing(sqlite3.connect(db)) as conn, conn:
            conn.execute(
                "UPDATE edi_sent_sets SET status = 'accepted', answered_at = ? WHERE id = ?",
                (clock.now, answered.id),
            )
        clock.now += 1.5 * HOUR
        past_retention = await store.purge()
        clock.now += HOUR
        past_window = await store.purge()

    # 1.5 h on: the 997 file put and the answered set go; the key is within the replay window.
    assert past_retention.removed == {"edi_outgoing": 1, "edi_sent_sets": 1}
    # 2.5 h on, past the window, the key goes too. A file still to put, and a set whose
    # answer is awaited, never go; nor the control-number sequences.
    assert past_window.removed == {"edi_interchanges": 1}
    assert select(db, "SELECT kind, state FROM edi_outgoing") == [
        ("interchange", "pending"),
        ("interchange", "pending"),
    ]
    assert select(db, "SELECT id, status FROM edi_sent_sets") == [(awaited.id, "unacknowledged")]
    assert select(db, "SELECT count(*) FROM edi_sequences") != [(0,)]
