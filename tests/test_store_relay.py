"""The outbox relay inside the store's writer process, against a real RabbitMQ node.

What the parent sees of it: rows accepted through the store reach the queue, the report it
polls (counters, confirm latencies, connection), a flush for shutdown, and a relay that comes
back with a new writer process without anyone asking.
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path

import anyio
import pytest
from amqp_support import BrokerNames, read_queue
from store_samples import acceptance, select

from gateway.config.settings import AmqpSettings
from gateway.localbroker import free_port
from gateway.relay import build_relay
from gateway.store import Store
from gateway.store.wire import RelayFactory, RelayReport

pytestmark = pytest.mark.anyio


def relay_to(url: str, names: BrokerNames) -> RelayFactory:
    settings = AmqpSettings(
        url=url,
        events_exchange=names.exchange,
        dead_letter_exchange=names.dead_letter_exchange,
        reconnect_min_s=0.1,
        reconnect_max_s=0.5,
    )
    return partial(build_relay, settings)


@pytest.fixture
async def names(amqp_url: str) -> AsyncIterator[BrokerNames]:
    names = BrokerNames.unique("test.store-relay")
    yield names
    await names.delete(amqp_url)


async def report_when(store: Store, check: Callable[[RelayReport], bool], what: str) -> RelayReport:
    """The store's relay report once `check` holds of it (10 s at most)."""
    try:
        with anyio.fail_after(10):
            while (report := store.relay_report()) is None or not check(report):
                await anyio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"no relay report with {what} within 10 s; last: {store.relay_report()}")
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
