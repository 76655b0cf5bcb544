"""The outbox relay inside the store's writer process, against a real RabbitMQ node.

What the parent sees of it: rows accepted through the store reach the queue, the report it
polls (counters, confirm latencies, connection), a flush for shutdown, and a relay that comes
back with a new writer process without anyone asking.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path

import anyio
import msgspec
import pytest
from amqp_support import BrokerNames, read_queue
from store_samples import acceptance, exit_writer, select, write_lock

from canonical.errors import StoreUnavailable
from gateway.config.secrets import AmqpUrl
from gateway.config.settings import AmqpSettings
from gateway.localbroker import free_port
from gateway.relay import RelayReport, build_relay, relay_report
from gateway.store import Store, child, schema, wire, writer
from gateway.store.core import RELAY_POLL_INTERVAL_S
from gateway.store.wire import RelayFactory

pytestmark = pytest.mark.anyio


def relay_settings(url: str, names: BrokerNames) -> AmqpSettings:
    return AmqpSettings(
        url=AmqpUrl(url),
        events_exchange=names.exchange,
        dead_letter_exchange=names.dead_letter_exchange,
        reconnect_min_s=0.1,
        reconnect_max_s=0.5,
    )


def relay_to(url: str, names: BrokerNames) -> RelayFactory:
    return partial(build_relay, relay_settings(url, names))


@pytest.fixture
async def names(amqp_url: str) -> AsyncIterator[BrokerNames]:
    names = BrokerNames.unique("test.store-relay")
    yield names
    await names.delete(amqp_url)


async def report_when(store: Store, check: Callable[[RelayReport], bool], what: str) -> RelayReport:
    """The store's relay report once `check` holds of it (10 s at most)."""
    try:
        with anyio.fail_after(10):
            while (report := relay_report(store)) is None or not check(report):
                await anyio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"no relay report with {what} within 10 s; last: {relay_report(store)}")
    return report


@pytest.mark.rabbitmq
async def test_accepted_rows_reach_the_queue_and_the_report_counts_them(
    tmp_path: Path, amqp_url: str, names: BrokerNames
) -> None:
    await names.declare_queue(amqp_url)
    db = tmp_path / "gateway.db"
    async with Store(db, relay=relay_to(amqp_url, names)) as store:
        sent = [acceptance(f"po-{n}", records=2) for n in range(50)]
        for one in sent:
            await store.accept(one)
        report = await report_when(store, lambda r: r.statistics.confirmed >= 100, "100 confirms")
        flushed = await store.flush_relay(5)
        still_pending = await store.pending(10)

    messages = await read_queue(amqp_url, names.queue)
    assert sorted(m.message_id or "" for m in messages) == sorted(
        row.message_id for one in sent for row in one.records
    )
    assert report.statistics.connected
    assert report.statistics.confirmed == 100
    assert sum(report.confirm_latency.counts) == 100
    assert report.error is None
    assert flushed is True
    assert still_pending == []
    assert select(db, "SELECT state, count(*) FROM outbox GROUP BY state") == [("published", 100)]


async def test_without_a_broker_rows_wait_and_a_flush_gives_up_at_once(tmp_path: Path) -> None:
    nobody = BrokerNames.unique("test.store-relay.nobody")
    db = tmp_path / "gateway.db"
    async with Store(db, relay=relay_to(f"amqp://127.0.0.1:{free_port()}/", nobody)) as store:
        await store.accept(acceptance("po-1", records=3))
        report = await report_when(store, lambda r: True, "anything")
        with anyio.fail_after(3):
            flushed = await store.flush_relay(60)

    assert not report.statistics.connected
    assert flushed is False
    assert select(db, "SELECT state, count(*) FROM outbox GROUP BY state") == [("pending", 3)]


@pytest.mark.rabbitmq
async def test_a_killed_writer_process_comes_back_with_its_relay_unasked(
    tmp_path: Path, amqp_url: str, names: BrokerNames
) -> None:
    await names.declare_queue(amqp_url)
    async with Store(tmp_path / "gateway.db", relay=relay_to(amqp_url, names)) as store:
        first, second = acceptance("po-1"), acceptance("po-2")
        await store.accept(first)
        await report_when(store, lambda r: r.statistics.confirmed == 1, "one confirm")
        killed = store.writer_pid
        assert killed is not None
        os.kill(killed, signal.SIGKILL)
        # No request from here until the new relay is connected: the store's poll restarts it.
        report = await report_when(
            store,
            lambda r: store.writer_pid not in (None, killed) and r.statistics.connected,
            "a new writer process connected",
        )
        await store.accept(second)
        await report_when(store, lambda r: r.statistics.confirmed == 1, "one confirm")

    messages = await read_queue(amqp_url, names.queue)
    assert report.statistics.confirmed == 0  # a new process: its counters start again
    assert [m.message_id for m in messages] == [
        first.records[0].message_id,
        second.records[0].message_id,
    ]


@pytest.mark.rabbitmq
async def test_marks_a_locked_store_refused_go_in_later_and_nothing_goes_out_twice(
    tmp_path: Path, amqp_url: str, names: BrokerNames
) -> None:
    # Another process (the operator CLI) holds SQLite's write lock while the relay drains:
    # the relay's marks cannot commit and it backs off; they are kept, go in once the lock
    # is released, and no row is published a second time.
    await names.declare_queue(amqp_url)
    db = tmp_path / "gateway.db"
    sent = [acceptance(f"po-{n}") for n in range(3000)]
    slow = msgspec.structs.replace(relay_settings(amqp_url, names), relay_batch_size=10)
    async with Store(db, busy_timeout_s=0.1, relay=partial(build_relay, slow)) as store:
        await report_when(store, lambda r: r.statistics.connected, "a connection")
        async with anyio.create_task_group() as tg:
            for one in sent:
                tg.start_soon(store.accept, one)
        with write_lock(db):
            await anyio.sleep(0.5)
        report = await report_when(
            store, lambda r: r.statistics.confirmed >= len(sent), "every row confirmed"
        )
        assert await store.flush_relay(10)

    messages = await read_queue(amqp_url, names.queue)
    assert report.statistics.reconnects >= 1  # the relay did meet the locked store
    assert len(messages) == len(sent)
    assert {m.message_id for m in messages} == {one.records[0].message_id for one in sent}
    assert select(db, "SELECT state, count(*) FROM outbox GROUP BY state") == [
        ("published", len(sent))
    ]


async def test_a_close_while_the_poll_awaits_the_writer_lets_it_exit_by_itself(
    tmp_path: Path,
) -> None:
    # The store's poll of the relay is stopped between two exchanges: one cancelled midway
    # kills the child, and its relay with it. A stopped child holds the poll mid-exchange.
    nobody = BrokerNames.unique("test.store-relay.nobody")
    relay = relay_to(f"amqp://127.0.0.1:{free_port()}/", nobody)
    opened: list[Store] = []
    close = anyio.Event()

    async def run() -> None:
        async with Store(tmp_path / "gateway.db", relay=relay) as store:
            opened.append(store)
            await close.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        with anyio.fail_after(10):
            while not opened or relay_report(opened[0]) is None:
                await anyio.sleep(0.05)
        assert opened[0]._writer_process is not None
        child = opened[0]._writer_process._child
        assert child is not None
        os.kill(child.pid, signal.SIGSTOP)
        await anyio.sleep(2 * RELAY_POLL_INTERVAL_S)  # a poll now waits for its answer
        close.set()
        await anyio.sleep(0.3)
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signal.SIGCONT)

    assert child is not None
    assert child.returncode == 0  # SIGKILLed: -9


@pytest.mark.rabbitmq
async def test_a_flush_that_cannot_finish_leaves_room_for_other_writes(
    tmp_path: Path, amqp_url: str, names: BrokerNames
) -> None:
    # The queue is full and refuses publishes: the flush runs to its deadline, and a write
    # asked meanwhile (a courier's settle) does not wait for it.
    await names.declare_queue(amqp_url, max_length=10)
    finished: list[str] = []
    async with Store(tmp_path / "gateway.db", relay=relay_to(amqp_url, names)) as store:
        await report_when(store, lambda r: r.statistics.connected, "a connection")
        for n in range(50):
            await store.accept(acceptance(f"po-{n}"))

        async def flush() -> None:
            assert not await store.flush_relay(3)
            finished.append("flush")

        async def write() -> None:
            await anyio.sleep(0.2)
            await store.save_state("courier", b"settled")
            finished.append("write")

        async with anyio.create_task_group() as tg:
            tg.start_soon(flush)
            tg.start_soon(write)
        state = await store.load_state("courier")

    assert finished == ["write", "flush"]
    assert state == b"settled"


async def test_a_writer_dying_on_every_batch_is_restarted_at_a_pace_despite_the_poll(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The relay's report is asked for twice a second: those answers must not count as a
    # healthy child, or one that dies on every batch is restarted about once a second.
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))  # the child imports the write
    nobody = BrokerNames.unique("test.store-relay.nobody")
    relay = relay_to(f"amqp://127.0.0.1:{free_port()}/", nobody)
    deaths = 0
    async with Store(tmp_path / "gateway.db", relay=relay) as store:
        with anyio.move_on_after(10):
            while True:
                try:
                    await store._write(exit_writer)
                except StoreUnavailable as exc:
                    deaths += "exited (code 7)" in str(exc)
                await anyio.sleep(0.1)

    assert 2 <= deaths <= 4  # paced 1, 2, 4 s apart: not about once a second


async def test_marks_a_later_commit_got_in_do_not_fail_the_relay(tmp_path: Path) -> None:
    # The writer process's own pieces, on a plain connection: the marks' own commit meets a
    # locked store and keeps them; the parent's next commit gets them in. The relay must
    # not then be failed (and its broker connection torn down) for the earlier failure.
    db = tmp_path / "gateway.db"
    conn = sqlite3.connect(db, isolation_level=None)
    schema.prepare_writer(conn, synchronous="NORMAL", busy_timeout_ms=50, journal_size_limit=0)
    writer.commit_batch(conn, [acceptance(f"po-{n}") for n in range(3)], [], 1.0)
    writes = child._RelayWrites(conn)
    outbox = child._Outbox(conn, writes)
    rows = await outbox.pending(10)
    await outbox.mark_published([row.seq for row in rows])
    with write_lock(db):
        writes.commit_alone()  # the 50 ms timer's commit: "database is locked"
    child._commit(conn, wire.Commit(acceptances=[], operations=[], now=2.0), writes)
    after = await outbox.pending(10, after_seq=rows[-1].seq)
    conn.close()

    assert after == []
    assert select(db, "SELECT state, count(*) FROM outbox GROUP BY state") == [("published", 3)]
