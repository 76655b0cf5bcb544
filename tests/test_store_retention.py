"""Retention: each table's rows go once past their limit, never one still needed, in chunks."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from pathlib import Path

import anyio
import msgspec
import pytest
from delivery_receiver import deliveries_for
from store_samples import Clock, acceptance, select

from canonical.delivery import DeliveryAttempt
from gateway.config import StoreSettings
from gateway.store import BatchReport, Retention, Store, schema
from gateway.store.orders import Milestone
from gateway.store.retention import purge_chunk

pytestmark = pytest.mark.anyio

HOUR = 3600.0


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "gateway.db"


def attempt(status: int = 200) -> DeliveryAttempt:
    return DeliveryAttempt(attempted_at=1.0, status=status, latency_s=0.01, response_head=b"ok")


# What goes and what stays, table by table


async def test_idempotency_keys_past_retention_go_and_recent_ones_stay(db_path: Path) -> None:
    clock = Clock()
    retention = Retention(idempotency_s=HOUR / 2)
    async with Store(db_path, clock=clock, retention=retention, purge_chunk=2) as store:
        for n in range(5):
            await store.accept(acceptance(f"old-{n}"))
        clock.now += HOUR
        await store.accept(acceptance("recent"))
        clock.now += 600
        report = await store.purge()
        recent = await store.accept(acceptance("recent"))
        old = await store.accept(acceptance("old-0"))

    assert report.removed == {"inbox": 5}  # the outbox keeps its rows: no limit set for it
    assert report.chunks >= 3  # two rows a chunk at most
    assert recent.replayed
    assert not old.replayed


async def test_published_outbox_rows_past_retention_go_and_pending_ones_stay(
    db_path: Path,
) -> None:
    clock = Clock()
    retention = Retention(outbox_s=HOUR)
    async with Store(db_path, clock=clock, retention=retention, purge_chunk=2) as store:
        published = await store.accept(acceptance("old-published", records=3))
        await store.mark_published(published.seqs)
        stuck = await store.accept(acceptance("old-pending"))  # the broker never took it
        clock.now += HOUR / 2
        fresh = await store.accept(acceptance("recent"))
        await store.mark_published(fresh.seqs)
        clock.now += HOUR  # the old rows were published 1.5 h ago, the recent one 1 h ago
        report = await store.purge()
        relay_reads = await store.pending(limit=10)
        later = await store.accept(acceptance("later"))

    assert report.removed == {"outbox": 3}
    assert select(db_path, "SELECT seq, state FROM outbox ORDER BY seq") == [
        (stuck.seqs[0], "pending"),
        (fresh.seqs[0], "published"),
        (later.seqs[0], "pending"),
    ]
    assert [row.seq for row in relay_reads] == [stuck.seqs[0]]
    assert later.seqs[0] > fresh.seqs[0]  # a seq is never handed out again


async def test_outbox_retention_counts_from_publication_not_acceptance(db_path: Path) -> None:
    clock = Clock()
    async with Store(db_path, clock=clock, retention=Retention(outbox_s=HOUR)) as store:
        late = await store.accept(acceptance("broker-was-down"))
        clock.now += 10 * HOUR
        await store.mark_published(late.seqs)
        clock.now += HOUR / 2
        report = await store.purge()

    assert report.removed == {}
    assert select(db_path, "SELECT state FROM outbox") == [("published",)]


async def test_delivered_deliveries_and_their_attempts_past_retention_go(db_path: Path) -> None:
    clock = Clock()
    retention = Retention(deliveries_s=HOUR, dead_letters_s=2 * HOUR)
    async with Store(db_path, clock=clock, retention=retention, purge_chunk=2) as store:
        await store.accept(deliveries_for("acme", ["PO-1", "PO-2", "PO-3", "PO-4"]))
        delivered, dead, waiting, recent = await store.deliveries.deliveries(partner_id="acme")
        await store.deliveries.settle(delivered.id, attempt(200), "delivered")
        await store.deliveries.settle(dead.id, attempt(500), "dead", reason="HTTP 500")
        await store.deliveries.settle(waiting.id, attempt(503), "retry", next_attempt_at=1e12)
        clock.now += HOUR
        await store.deliveries.settle(recent.id, attempt(200), "delivered")
        clock.now += HOUR / 2  # delivered and dead 1.5 h ago, recent 0.5 h ago
        pulled_before = await store.deliveries.deliveries(state="pending", after_id=delivered.id)
        report = await store.purge()
        pulled_after = await store.deliveries.deliveries(state="pending", after_id=delivered.id)
        kept = await store.deliveries.deliveries(partner_id="acme")
        gone_attempts = await store.deliveries.attempts(delivered.id)

    assert report.removed == {"deliveries": 1, "delivery_attempts": 1}
    assert [(d.id, d.state) for d in kept] == [
        (dead.id, "dead"),  # a dead letter's replay needs it: kept as long as dead letters
        (waiting.id, "pending"),
        (recent.id, "delivered"),
    ]
    assert gone_attempts == []
    assert pulled_after == pulled_before  # a pulling partner's cursor reads on as before


async def test_dead_letters_past_retention_go_with_the_dead_rows_their_replay_needs(
    db_path: Path,
) -> None:
    clock = Clock()
    retention = Retention(dead_letters_s=HOUR)
    async with Store(db_path, clock=clock, retention=retention, purge_chunk=2) as store:
        unroutable = await store.accept(acceptance("unroutable"))
        await store.mark_dead(unroutable.seqs[0], "unroutable: no queue bound")
        await store.accept(deliveries_for("acme", ["PO-1"]))
        (delivery,) = await store.deliveries.deliveries(partner_id="acme")
        await store.deliveries.settle(delivery.id, attempt(500), "dead", reason="HTTP 500")
        await store.dead_letter(source="intake:acme", reason="crashed", detail="", payload=b"x")
        clock.now += HOUR / 2
        recent = await store.accept(acceptance("recent-unroutable"))
        await store.mark_dead(recent.seqs[0], "unroutable: no queue bound")
        clock.now += HOUR  # the first three died 1.5 h ago, the recent one 1 h ago
        report = await store.purge()
        letters = await store.dead_letters()

    assert report.removed == {
        "deliveries": 1,
        "delivery_attempts": 1,
        "outbox": 1,
        "dead_letters": 3,
    }
    assert [(letter.source, letter.reason) for letter in letters] == [
        ("relay", "unroutable: no queue bound")
    ]
    # The kept dead letter's row is still there for its replay.
    assert select(db_path, "SELECT seq, state FROM outbox") == [(recent.seqs[0], "dead")]
    assert select(db_path, "SELECT count(*) FROM deliveries") == [(0,)]


async def test_settled_customer_orders_past_retention_go_and_open_ones_stay(
    db_path: Path,
) -> None:
    clock = Clock()
    retention = Retention(customer_orders_s=HOUR)
    async with Store(db_path, clock=clock, retention=retention, purge_chunk=2) as store:
        for n, status in enumerate(("delivered", "cancelled", "buffered", "shipped", "recent")):
            await store.orders.record(
                order_id=f"order-{status}",
                customer_id="acme-retail",
                idempotency_key=f"key-{n}",
                message_id=f"message-{n}",
                submitted_at=clock.now,
            )
        for status in ("delivered", "cancelled", "shipped"):
            await store.orders.apply(f"order-{status}", Milestone(status=status, at=clock.now))
        clock.now += HOUR / 2
        await store.orders.apply("order-recent", Milestone(status="delivered", at=clock.now))
        clock.now += HOUR  # the first settled 1.5 h ago, the recent one 1 h ago
        report = await store.purge()
        gone = await store.orders.order("order-delivered", "acme-retail")
        recent = await store.orders.order("order-recent", "acme-retail")

    assert report.removed == {"customer_orders": 2}
    # Open orders stay however old: their status is still asked for and still moves on.
    assert select(db_path, "SELECT order_id, status FROM customer_orders ORDER BY order_id") == [
        ("order-buffered", "buffered"),
        ("order-recent", "delivered"),
        ("order-shipped", "shipped"),
    ]
    assert gone is None
    assert recent is not None


async def test_without_retention_limits_nothing_is_purged(db_path: Path) -> None:
    clock = Clock()
    keep = Retention(idempotency_s=0, outbox_s=None, deliveries_s=0, dead_letters_s=None)
    async with Store(db_path, clock=clock, retention=keep) as store:
        accepted = await store.accept(acceptance("key-1"))
        await store.mark_published(accepted.seqs)
        await store.accept(deliveries_for("acme", ["PO-1"]))
        (delivery,) = await store.deliveries.deliveries(partner_id="acme")
        await store.deliveries.settle(delivery.id, attempt(200), "delivered")
        await store.dead_letter(source="intake:acme", reason="crashed", detail="", payload=b"x")
        clock.now += 10 * 365 * 24 * HOUR
        report = await store.purge()

    assert (report.removed, report.chunks) == ({}, 0)
    kept = {"inbox": 2, "outbox": 1, "deliveries": 1, "delivery_attempts": 1, "dead_letters": 1}
    for table, count in kept.items():
        assert select(db_path, f"SELECT count(*) FROM {table}") == [(count,)], table


async def test_background_purge_runs_every_interval_and_says_what_went(
    db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    retention = Retention(idempotency_s=HOUR)
    caplog.set_level(logging.INFO, logger="gateway.store")
    async with Store(db_path, clock=clock, retention=retention, purge_interval_s=0.01) as store:
        await store.accept(acceptance("key-1"))
        clock.now += 2 * HOUR
        with anyio.fail_after(10):
            # The purge shows only in the file: poll it, bounded by the deadline.
            while select(db_path, "SELECT count(*) FROM inbox") != [(0,)]:
                await anyio.sleep(0.01)
        again = await store.accept(acceptance("key-1"))

    assert not again.replayed
    (line,) = [r for r in caplog.records if r.getMessage() == "purged rows past retention"]
    assert line.__dict__["fields"]["removed"] == {"inbox": 1}


# Chunks: the purge never holds acceptances back for long


async def test_a_large_purge_goes_in_chunks_with_acceptances_committed_between_them(
    db_path: Path,
) -> None:
    clock = Clock()
    batches: list[BatchReport] = []
    retention = Retention(idempotency_s=HOUR, outbox_s=HOUR)
    async with Store(
        db_path,
        synchronous="NORMAL",
        clock=clock,
        retention=retention,
        purge_chunk=50,
        on_batch=batches.append,
    ) as store:
        for n in range(40):  # 2,000 idempotency records and 4,000 published outbox rows
            many = [acceptance(f"old-{n}-{i}", records=2) for i in range(50)]
            async with anyio.create_task_group() as tg:
                for sample in many:
                    tg.start_soon(store.accept, sample)
            await store.mark_published(range(1, 100 * (n + 1) + 1))
        clock.now += 2 * HOUR
        waits: list[int] = []  # batches each acceptance waited for, from queued to answered
        purged = anyio.Event()

        async def accept_while_purging() -> None:
            n = 0
            while not purged.is_set():
                queued_at = len(batches)
                await store.accept(acceptance(f"new-{n}"))
                waits.append(len(batches) - queued_at)
                n += 1

        async with anyio.create_task_group() as tg:
            tg.start_soon(accept_while_purging)
            first = len(batches)
            report = await store.purge()
            purged.set()
        during = batches[first:]

    assert report.removed == {"inbox": 2000, "outbox": 4000}
    chunks = [b for b in during if b.operations]
    assert len(chunks) == report.chunks >= 6000 // 50  # one chunk a transaction, 50 rows at most
    assert all(b.operations == 1 for b in chunks)
    # Acceptances went on while it ran: one committed beside nearly every chunk, and none
    # waited for more than the batch in progress and its own.
    assert sum(b.acceptances for b in during) >= len(chunks) - 1
    assert max(waits) <= 2


def test_a_window_ends_at_its_byte_budget_so_a_large_row_is_never_one_of_many(
    db_path: Path,
) -> None:
    bodies = [b"s" * 1000] * 10 + [b"L" * 512 * 1024] + [b"s" * 1000] * 10
    with contextlib.closing(sqlite3.connect(db_path, isolation_level=None)) as conn:
        schema.prepare_writer(conn, synchronous="NORMAL", busy_timeout_ms=50, journal_size_limit=0)
        conn.executemany(
            """
            INSERT INTO outbox (message_id, partner_id, document_type, schema_version,
                                routing_key, correlation_id, idempotency_key, body, state,
                                created_at, published_at)
            VALUES (?, 'acme', 'purchase_order', 1, 'purchase_order.acme', 'c', 'k', ?,
                    'published', 1.0, 1.0)
            """,
            [(f"m-{n}", body) for n, body in enumerate(bodies)],
        )
        cutoffs: dict[str, float | None] = {"kept": 100.0}
        first = purge_chunk("outbox", cutoffs, 0, 64 * 1024, 10_000, conn, 0.0)
        second = purge_chunk("outbox", cutoffs, 11, 64 * 1024, 10_000, conn, 0.0)

    # The window closes with the first row that fills its budget: the large row ends it.
    assert (first.removed, first.last) == ({"outbox": 11}, 11)
    assert (second.removed, second.last) == ({"outbox": 10}, None)  # the table's end


# Configuration


def test_retention_keys_default_to_bounded_and_zero_keeps_for_ever() -> None:
    defaults = StoreSettings()
    forever = msgspec.convert(
        {"outbox_retention_s": 0, "delivery_retention_s": 0, "dead_letter_retention_s": 0},
        StoreSettings,
    )

    day = 24 * 3600
    assert (
        defaults.idempotency_retention_s,
        defaults.outbox_retention_s,
        defaults.delivery_retention_s,
        defaults.dead_letter_retention_s,
    ) == (7 * day, day, 7 * day, 30 * day)
    assert (defaults.closed_thread_retention_s, defaults.workflow_journal_retention_s) == (
        90 * day,
        180 * day,
    )
    assert (forever.outbox_retention_s, forever.delivery_retention_s) == (0, 0)
    assert forever.dead_letter_retention_s == 0
