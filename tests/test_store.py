"""The store: group commit, idempotency, the outbox for the relay, dead letters, actor state."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest
from anyio import wait_all_tasks_blocked
from store_samples import Clock, acceptance, select, write_lock

from canonical.errors import (
    ConfigError,
    GatewayError,
    IdempotencyConflict,
    IdempotencyKeyReused,
    StoreUnavailable,
)
from gateway.store import Acceptance, Accepted, BatchReport, Store
from gateway.store.schema import MIGRATIONS, migrate
from gateway.store.writer import ROWS_PER_INSERT, commit_batch

pytestmark = pytest.mark.anyio


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "gateway.db"


async def outcome_of(store: Store, sample: Acceptance, results: dict[str, Any]) -> None:
    """Accept `sample` and record under its key what came back: Accepted or the error."""
    try:
        results[sample.idempotency_key] = await store.accept(sample)
    except GatewayError as exc:
        results[sample.idempotency_key] = exc


# Accepting


async def test_accept_answers_once_inbox_and_outbox_rows_are_committed(db_path: Path) -> None:
    sample = acceptance("key-1", records=2)
    async with Store(db_path) as store:
        accepted = await store.accept(sample)

        # Another connection (another process) sees them: the rows were committed.
        inbox = select(db_path, "SELECT partner_id, idempotency_key, status, response FROM inbox")
        outbox = select(
            db_path, "SELECT seq, message_id, idempotency_key, body, state FROM outbox ORDER BY seq"
        )
    assert accepted == Accepted(status=202, body=sample.response_body, replayed=False, seqs=(1, 2))
    assert inbox == [("acme", "key-1", 202, sample.response_body)]
    assert outbox == [
        (seq, row.message_id, "key-1", row.body, "pending")
        for seq, row in zip((1, 2), sample.records, strict=True)
    ]


async def test_concurrent_accepts_share_commits(db_path: Path) -> None:
    batches: list[BatchReport] = []
    results: dict[str, Any] = {}
    async with Store(db_path, on_batch=batches.append) as store:
        async with anyio.create_task_group() as tg:
            for n in range(200):
                tg.start_soon(outcome_of, store, acceptance(f"key-{n}"), results)
        stats = store.statistics()

    assert all(isinstance(r, Accepted) and not r.replayed for r in results.values())
    assert len(results) == 200
    assert stats.requests_committed == 200
    assert stats.rows_committed == 200
    assert stats.batches_committed <= 20
    assert sum(report.acceptances for report in batches) == 200
    assert select(db_path, "SELECT count(*) FROM outbox") == [(200,)]


async def test_batch_never_exceeds_max_batch(db_path: Path) -> None:
    batches: list[BatchReport] = []
    results: dict[str, Any] = {}
    async with (
        Store(db_path, max_batch=8, on_batch=batches.append) as store,
        anyio.create_task_group() as tg,
    ):
        for n in range(50):
            tg.start_soon(outcome_of, store, acceptance(f"key-{n}"), results)

    assert max(report.acceptances for report in batches) == 8
    assert sum(report.acceptances for report in batches) == 50


def test_a_batch_past_one_insert_statement_numbers_every_row_in_order(db_path: Path) -> None:
    # More rows than one INSERT carries, with 0, 1 and 3 records per request: each request
    # gets the seqs of its own rows, in the order it listed them.
    samples = [acceptance(f"key-{n}", records=n % 3 + (n % 5 == 0)) for n in range(150)]
    assert sum(len(s.records) for s in samples) > 2 * ROWS_PER_INSERT
    with _plain(db_path) as conn:
        migrate(conn)
        answers, _ = commit_batch(conn, samples, [], now=1.0)
        stored = dict(conn.execute("SELECT message_id, seq FROM outbox").fetchall())
        inbox = conn.execute("SELECT count(*) FROM inbox").fetchone()

    expected = 1
    for sample, answer in zip(samples, answers, strict=True):
        assert isinstance(answer, Accepted)
        assert answer.seqs == tuple(range(expected, expected + len(sample.records)))
        assert [stored[r.message_id] for r in sample.records] == list(answer.seqs)
        expected += len(sample.records)
    assert len(stored) == expected - 1
    assert inbox == (150,)


def test_idempotency_records_survive_the_inbox_migration(db_path: Path) -> None:
    # A store written by schema version 2 (inbox clustered on the key) keeps answering
    # retries byte for byte after the upgrade, and refuses a reused key as before.
    first, other = acceptance("key-1"), acceptance("key-2", body=b'{"po": "PO-2"}')
    with _plain(db_path) as conn:
        for statements in MIGRATIONS[:2]:
            for statement in statements:
                conn.execute(statement)
        conn.execute("PRAGMA user_version = 2")
        conn.executemany(
            "INSERT INTO inbox VALUES (?, ?, ?, ?, ?, ?)",
            [
                (a.partner_id, a.idempotency_key, a.body_hash, 202, a.response_body, 1.0)
                for a in (first, other)
            ],
        )
        assert migrate(conn) == 2
        answers, _ = commit_batch(
            conn,
            [acceptance("key-1"), acceptance("key-2"), acceptance("key-3")],
            [],
            now=2.0,
        )
        inbox = conn.execute("SELECT idempotency_key FROM inbox ORDER BY rowid").fetchall()

    assert answers[0] == Accepted(status=202, body=first.response_body, replayed=True)
    assert isinstance(answers[1], IdempotencyKeyReused)
    assert isinstance(answers[2], Accepted)
    assert not answers[2].replayed
    assert inbox == [("key-1",), ("key-2",), ("key-3",)]


async def test_replay_returns_the_first_answer_byte_for_byte(db_path: Path) -> None:
    first = acceptance("key-1")
    retry = acceptance("key-1")  # same body, but a retry mints new message ids and answer
    async with Store(db_path) as store:
        original = await store.accept(first)
        replayed = await store.accept(retry)

    assert replayed == Accepted(status=original.status, body=first.response_body, replayed=True)
    assert select(db_path, "SELECT message_id FROM outbox") == [(first.records[0].message_id,)]


async def test_key_reused_with_another_body_is_refused_and_nothing_is_stored(
    db_path: Path,
) -> None:
    async with Store(db_path) as store:
        first = await store.accept(acceptance("key-1", body=b"one"))
        with pytest.raises(IdempotencyKeyReused):
            await store.accept(acceptance("key-1", body=b"two"))

    assert select(db_path, "SELECT response FROM inbox") == [(first.body,)]
    assert select(db_path, "SELECT count(*) FROM outbox") == [(1,)]


async def test_same_key_is_independent_per_partner(db_path: Path) -> None:
    async with Store(db_path) as store:
        acme = await store.accept(acceptance("key-1", partner="acme", body=b"one"))
        globex = await store.accept(acceptance("key-1", partner="globex", body=b"two"))

    assert not acme.replayed
    assert not globex.replayed


def aliased(key: str, alias: str, *, body: bytes = b'{"po": "PO-1"}') -> Acceptance:
    """A webhook's acceptance: its signed webhook-id `key`, its Idempotency-Key `alias`."""
    return msgspec.structs.replace(acceptance(key, body=body), alias_keys=(alias,))


def inbox_keys(db_path: Path) -> list[str]:
    return [key for (key,) in select(db_path, "SELECT idempotency_key FROM inbox ORDER BY 1")]


async def test_new_request_keeps_its_key_and_its_alias(db_path: Path) -> None:
    async with Store(db_path) as store:
        answer = await store.accept(aliased("msg_1", "order-1"))

    assert not answer.replayed
    assert inbox_keys(db_path) == ["msg_1", "order-1"]


async def test_kept_key_with_a_new_alias_is_the_first_answer_and_keeps_nothing(
    db_path: Path,
) -> None:
    # A captured signed request replayed with a fresh Idempotency-Key each time.
    async with Store(db_path) as store:
        first = await store.accept(aliased("msg_1", "order-1"))
        again = [await store.accept(aliased("msg_1", f"fresh-{n}")) for n in range(3)]

    assert again == [Accepted(status=first.status, body=first.body, replayed=True)] * 3
    assert inbox_keys(db_path) == ["msg_1", "order-1"]
    assert select(db_path, "SELECT count(*) FROM outbox") == [(1,)]


async def test_kept_alias_under_a_new_key_is_answered_from_the_first(db_path: Path) -> None:
    # A partner that signs each retry with a new webhook-id but keeps its Idempotency-Key.
    async with Store(db_path) as store:
        first = await store.accept(aliased("msg_1", "order-1"))
        retry = await store.accept(aliased("msg_2", "order-1"))
        other_body = aliased("msg_3", "order-1", body=b"another")
        with pytest.raises(IdempotencyKeyReused, match="order-1"):
            await store.accept(other_body)

    assert retry == Accepted(status=first.status, body=first.body, replayed=True)
    assert select(db_path, "SELECT count(*) FROM outbox") == [(1,)]


async def test_the_transports_own_key_answers_before_an_alias(db_path: Path) -> None:
    async with Store(db_path) as store:
        first = await store.accept(aliased("msg_1", "order-1", body=b"one"))
        await store.accept(aliased("msg_2", "order-2", body=b"two"))
        # msg_1's signed body again, with the alias another request holds.
        answer = await store.accept(aliased("msg_1", "order-2", body=b"one"))

    assert answer == Accepted(status=first.status, body=first.body, replayed=True)


def test_requests_sharing_only_an_alias_in_one_batch_are_a_conflict(db_path: Path) -> None:
    with _plain(db_path) as conn:
        migrate(conn)
        answers, _ = commit_batch(
            conn, [aliased("msg_1", "order-1"), aliased("msg_2", "order-1")], [], now=1.0
        )

    assert isinstance(answers[0], Accepted)
    assert isinstance(answers[1], IdempotencyConflict)


async def test_alias_still_in_flight_is_a_conflict(db_path: Path) -> None:
    results: dict[str, Any] = {}
    async with Store(db_path, busy_timeout_s=60) as store:
        with write_lock(db_path) as lock:
            async with anyio.create_task_group() as tg:
                tg.start_soon(outcome_of, store, aliased("msg_1", "order-1"), results)
                await wait_all_tasks_blocked()

                with anyio.fail_after(10), pytest.raises(IdempotencyConflict, match="order-1"):
                    await store.accept(aliased("msg_2", "order-1"))
                lock.execute("ROLLBACK")

    assert isinstance(results["msg_1"], Accepted)
    assert inbox_keys(db_path) == ["msg_1", "order-1"]


async def test_key_still_in_flight_is_a_conflict(db_path: Path) -> None:
    results: dict[str, Any] = {}
    async with Store(db_path, busy_timeout_s=60) as store:
        with write_lock(db_path) as lock:
            async with anyio.create_task_group() as tg:
                tg.start_soon(outcome_of, store, acceptance("key-1"), results)
                await wait_all_tasks_blocked()  # its batch is waiting for the write lock

                # Refused at once, not queued behind the first (the deadline guards a hang).
                with anyio.fail_after(10), pytest.raises(IdempotencyConflict):
                    await store.accept(acceptance("key-1"))
                lock.execute("ROLLBACK")

    assert isinstance(results["key-1"], Accepted)
    assert select(db_path, "SELECT count(*) FROM inbox") == [(1,)]


def test_second_request_for_a_key_in_one_batch_is_a_conflict(db_path: Path) -> None:
    # The store's in-flight set keeps such a pair out of one batch; the writer holds the
    # rule too, for a batch built another way.
    with _plain(db_path) as conn:
        migrate(conn)
        answers, _ = commit_batch(conn, [acceptance("key-1"), acceptance("key-1")], [], now=1.0)

    assert isinstance(answers[0], Accepted)
    assert isinstance(answers[1], IdempotencyConflict)


async def test_rows_refused_by_a_constraint_fail_only_their_request(db_path: Path) -> None:
    taken = acceptance("key-0").records[0].message_id
    results: dict[str, Any] = {}
    async with Store(db_path, busy_timeout_s=60) as store:
        await store.accept(acceptance("key-0", message_ids=(taken,)))
        with write_lock(db_path) as lock:
            async with anyio.create_task_group() as tg:
                tg.start_soon(outcome_of, store, acceptance("key-1"), results)
                await wait_all_tasks_blocked()  # key-1's batch waits for the lock
                # These two queue up and share the next batch.
                tg.start_soon(outcome_of, store, acceptance("key-2"), results)
                tg.start_soon(outcome_of, store, acceptance("key-3", message_ids=(taken,)), results)
                await wait_all_tasks_blocked()
                lock.execute("ROLLBACK")

    assert isinstance(results["key-2"], Accepted)
    assert type(results["key-3"]) is GatewayError
    keys = select(db_path, "SELECT idempotency_key FROM inbox ORDER BY idempotency_key")
    assert keys == [("key-0",), ("key-1",), ("key-2",)]


async def test_failed_commit_answers_store_unavailable_and_the_next_one_succeeds(
    db_path: Path,
) -> None:
    async with Store(db_path, busy_timeout_s=0.05, retry_after_s=7) as store:
        with write_lock(db_path), pytest.raises(StoreUnavailable) as refused:
            await store.accept(acceptance("key-1"))
        retried = await store.accept(acceptance("key-1"))
        stats = store.statistics()

    assert refused.value.retry_after == 7
    assert not retried.replayed
    assert stats.commit_failures == 1
    assert select(db_path, "SELECT count(*) FROM outbox") == [(1,)]


async def test_closing_finishes_the_current_batch_and_fails_queued_requests(
    db_path: Path,
) -> None:
    results: dict[str, Any] = {}
    async with Store(db_path):
        pass  # the schema exists before the lock is taken
    with write_lock(db_path) as lock:
        async with (
            anyio.create_task_group() as tg,
            Store(db_path, busy_timeout_s=60) as store,
        ):
            tg.start_soon(outcome_of, store, acceptance("key-1"), results)
            await wait_all_tasks_blocked()  # key-1's batch waits for the lock
            tg.start_soon(outcome_of, store, acceptance("key-2"), results)
            await wait_all_tasks_blocked()  # key-2 is queued behind it

            async def release_once_closing() -> None:
                await wait_all_tasks_blocked()  # the store is closing, waiting for key-1
                lock.execute("ROLLBACK")

            tg.start_soon(release_once_closing)

    assert isinstance(results["key-1"], Accepted)
    assert isinstance(results["key-2"], StoreUnavailable)
    assert select(db_path, "SELECT idempotency_key FROM inbox") == [("key-1",)]


async def test_cancelled_store_still_answers_the_batch_it_was_committing(db_path: Path) -> None:
    results: dict[str, Any] = {}
    async with Store(db_path):
        pass  # the schema exists before the lock is taken
    with write_lock(db_path) as lock:
        async with anyio.create_task_group() as callers:
            with anyio.CancelScope() as owner:
                async with Store(db_path, busy_timeout_s=60) as store:
                    callers.start_soon(outcome_of, store, acceptance("key-1"), results)
                    await wait_all_tasks_blocked()  # key-1's batch waits for the lock

                    async def release_once_cancelled() -> None:
                        await wait_all_tasks_blocked()  # the store's owner is unwinding
                        lock.execute("ROLLBACK")

                    callers.start_soon(release_once_cancelled)
                    owner.cancel()
                    await anyio.sleep_forever()

    assert isinstance(results["key-1"], Accepted)
    assert select(db_path, "SELECT idempotency_key FROM inbox") == [("key-1",)]


async def test_closed_store_refuses_requests(db_path: Path) -> None:
    async with Store(db_path) as store:
        pass
    with pytest.raises(StoreUnavailable):
        await store.accept(acceptance("key-1"))


# Schema


async def test_reopening_keeps_the_rows(db_path: Path) -> None:
    async with Store(db_path) as store:
        await store.accept(acceptance("key-1"))
    async with Store(db_path) as store:
        replayed = await store.accept(acceptance("key-1"))

    assert replayed.replayed
    assert select(db_path, "PRAGMA journal_mode") == [("wal",)]


async def test_database_from_a_newer_gateway_is_refused(db_path: Path) -> None:
    async with Store(db_path):
        pass
    with _plain(db_path) as conn:
        conn.execute("PRAGMA user_version = 99")

    with pytest.raises(ConfigError, match="newer"):
        async with Store(db_path):
            pass


# Relay side


async def test_pending_lists_unpublished_rows_in_seq_order(db_path: Path) -> None:
    async with Store(db_path) as store:
        first = await store.accept(acceptance("key-1", records=2))
        second = await store.accept(acceptance("key-2", records=1))
        everything = await store.pending(limit=10)
        after_first = await store.pending(limit=10, after_seq=first.seqs[-1])
        limited = await store.pending(limit=2)

    assert [r.seq for r in everything] == [*first.seqs, *second.seqs]
    assert [r.seq for r in after_first] == list(second.seqs)
    assert [r.seq for r in limited] == list(first.seqs)
    assert everything[2].idempotency_key == "key-2"
    assert everything[2].routing_key == "purchase_order.acme"


async def test_published_rows_leave_the_pending_list(db_path: Path) -> None:
    async with Store(db_path) as store:
        accepted = await store.accept(acceptance("key-1", records=3))
        await store.mark_published(accepted.seqs[:2])
        pending = await store.pending(limit=10)

    assert [r.seq for r in pending] == [accepted.seqs[2]]
    states = select(db_path, "SELECT state, published_at IS NOT NULL FROM outbox ORDER BY seq")
    assert states == [("published", 1), ("published", 1), ("pending", 0)]


async def test_dead_row_leaves_pending_and_becomes_a_dead_letter(db_path: Path) -> None:
    sample = acceptance("key-1")
    async with Store(db_path) as store:
        accepted = await store.accept(sample)
        await store.mark_dead(accepted.seqs[0], "unroutable: no queue bound")
        pending = await store.pending(limit=10)
        letters = await store.dead_letters(source="relay")

    assert pending == []
    assert [(d.message_id, d.partner_id, d.reason, d.payload) for d in letters] == [
        (sample.records[0].message_id, "acme", "unroutable: no queue bound", sample.records[0].body)
    ]
    assert select(db_path, "SELECT state, reason FROM outbox") == [
        ("dead", "unroutable: no queue bound")
    ]


async def test_backlog_counts_pending_rows_and_ages_the_oldest(db_path: Path) -> None:
    clock = Clock()
    async with Store(db_path, clock=clock) as store:
        first = await store.accept(acceptance("key-1", records=2))
        clock.now += 30
        second = await store.accept(acceptance("key-2"))
        clock.now += 60
        backlog = await store.outbox_backlog()
        await store.mark_published(first.seqs)
        after_publish = await store.outbox_backlog()
        await store.mark_published(second.seqs)
        drained = await store.outbox_backlog()

    assert backlog == (3, 90.0)
    assert after_publish == (1, 60.0)
    assert drained == (0, None)


async def test_outbox_seq_is_never_reused_after_rows_are_deleted(db_path: Path) -> None:
    async with Store(db_path) as store:
        first = await store.accept(acceptance("key-1", records=2))
    with _plain(db_path) as conn:
        conn.execute("DELETE FROM outbox")
    async with Store(db_path) as store:
        second = await store.accept(acceptance("key-2", records=2))

    assert first.seqs == (1, 2)
    assert second.seqs == (3, 4)


# Dead letters and actor state


async def test_dead_letters_are_kept_and_listed_by_filter(db_path: Path) -> None:
    async with Store(db_path) as store:
        first = await store.dead_letter(
            source="file", reason="undecodable", detail="line 3", payload=b"\x00bad"
        )
        second = await store.dead_letter(
            source="actor:partner/acme",
            reason="mapping failed",
            detail="unknown item",
            payload=b"{}",
            partner_id="acme",
            message_id="m-1",
        )
        everything = await store.dead_letters()
        files = await store.dead_letters(source="file")
        acme = await store.dead_letters(partner_id="acme")
        after_first = await store.dead_letters(after_id=first)

    assert [d.id for d in everything] == [first, second]
    assert [(d.reason, d.detail, d.payload) for d in files] == [
        ("undecodable", "line 3", b"\x00bad")
    ]
    assert [d.message_id for d in acme] == ["m-1"]
    assert [d.id for d in after_first] == [second]


async def test_actor_state_round_trips_and_is_replaced(db_path: Path) -> None:
    async with Store(db_path) as store:
        missing = await store.load_state("po/PO-1")
        await store.save_state("po/PO-1", b"released")
        await store.save_state("po/PO-1", b"acknowledged")
    async with Store(db_path) as store:
        kept = await store.load_state("po/PO-1")

    assert missing is None
    assert kept == b"acknowledged"


def _plain(path: Path) -> contextlib.closing[sqlite3.Connection]:
    """A plain autocommit connection, for the writer's unit test and for tampering."""
    return contextlib.closing(sqlite3.connect(path, isolation_level=None))
