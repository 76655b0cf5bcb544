"""The outbox relay against real RabbitMQ nodes: ordered, confirmed, and nothing lost on a crash."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path

import aio_pika
import anyio
import msgspec
import pytest
from aio_pika.abc import AbstractIncomingMessage
from aiormq.abc import AbstractChannel
from amqp_support import BrokerNames, MemoryOutbox, outbox_rows, read_queue

from actors.relay import OutboxRelay
from canonical.outbox import OutboxRecord
from gateway.localbroker import LocalRabbitMQ
from protocols.amqp import ConfirmedPublisher, connect, declare_consumer_queue, declare_topology

pytestmark = pytest.mark.anyio


def relay_connect(
    url: str, names: BrokerNames, *, with_queue: bool = False
) -> Callable[[], Awaitable[ConfirmedPublisher]]:
    """What the composition root wires in: connect, then declare the topology."""

    async def declare(channel: AbstractChannel) -> None:
        await declare_topology(
            channel,
            events_exchange=names.exchange,
            dead_letter_exchange=names.dead_letter_exchange,
            parking_lot=names.parking_lot,
        )
        if with_queue:  # a node that starts empty gets the consumer's queue as well
            await declare_consumer_queue(
                channel,
                names.queue,
                bindings=["#"],
                exchange=names.exchange,
                dead_letter_exchange=names.dead_letter_exchange,
            )

    return partial(connect, url, exchange=names.exchange, connect_timeout=5, declare=declare)


async def run_until_drained(relay: OutboxRelay, outbox: MemoryOutbox, *, timeout: float) -> None:
    with anyio.fail_after(timeout):
        async with anyio.create_task_group() as tg:
            await tg.start(relay.run)
            while outbox.count("pending"):
                await anyio.sleep(0.02)
            tg.cancel_scope.cancel()


def first_appearances(
    messages: Sequence[AbstractIncomingMessage], rows: Sequence[OutboxRecord]
) -> dict[str, list[int]]:
    """Per partner, the seqs in the order their message first appears on the queue."""
    seq_of = {row.message_id: row.seq for row in rows}
    seen: set[str] = set()
    order: dict[str, list[int]] = {}
    for message in messages:
        assert message.message_id is not None
        if message.message_id not in seen:
            seen.add(message.message_id)
            partner = str((message.headers or {})["partner_id"])
            order.setdefault(partner, []).append(seq_of[message.message_id])
    return order


@pytest.fixture
async def names(amqp_url: str) -> AsyncIterator[BrokerNames]:
    names = BrokerNames.unique("test.relay")
    yield names
    await names.delete(amqp_url)


@pytest.fixture
def own_node(rabbitmq: LocalRabbitMQ, tmp_path: Path) -> Iterator[LocalRabbitMQ]:
    """A node of this test's own, not started, that it may kill (the session node never is)."""
    node = LocalRabbitMQ(tmp_path / "node")
    yield node
    node.destroy()


@pytest.mark.rabbitmq
async def test_rows_land_in_seq_order_with_their_properties_and_are_marked_published(
    amqp_url: str, names: BrokerNames
) -> None:
    await names.declare_queue(amqp_url, bindings=["purchase_order.*"])
    rows = outbox_rows(1200)
    outbox = MemoryOutbox()
    outbox.add(rows)
    relay = OutboxRelay(outbox, relay_connect(amqp_url, names), batch_size=500)

    await run_until_drained(relay, outbox, timeout=30)

    assert outbox.count("published") == len(rows)
    assert [len(batch) for batch in outbox.published_batches] == [500, 500, 200]
    messages = await read_queue(amqp_url, names.queue)
    assert [m.message_id for m in messages] == [row.message_id for row in rows]
    for row, message in zip(rows, messages, strict=True):
        assert message.body == row.body
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert message.correlation_id == row.correlation_id
        assert message.type == row.document_type
        assert message.app_id == "partner-gateway"
        assert message.content_type == "application/json"
        assert isinstance(message.timestamp, datetime)
        expected_headers = {
            "partner_id": row.partner_id,
            "schema_version": row.schema_version,
            "idempotency_key": row.idempotency_key,
        }
        if row.causation_id is not None:
            expected_headers["causation_id"] = row.causation_id
        assert message.headers == expected_headers


@pytest.mark.rabbitmq
async def test_unroutable_row_is_marked_dead_with_no_route_and_never_published(
    amqp_url: str, names: BrokerNames
) -> None:
    await names.declare_queue(amqp_url, bindings=["purchase_order.*"])
    orders = outbox_rows(2)
    invoice = outbox_rows(1, document_type="invoice", partners=["acme"], first_seq=3)
    outbox = MemoryOutbox()
    outbox.add([*orders, *invoice])
    relay = OutboxRelay(outbox, relay_connect(amqp_url, names))

    await run_until_drained(relay, outbox, timeout=30)

    assert outbox.dead == {3: "unroutable: 312 NO_ROUTE (routing key 'invoice.acme')"}
    assert outbox.published_batches == [[1, 2]]
    assert relay.statistics().returned == 1


@pytest.mark.rabbitmq
async def test_a_row_amqp_cannot_carry_is_dead_lettered_unsent_and_the_rest_go_in_order(
    amqp_url: str, names: BrokerNames
) -> None:
    # A correlation id is an AMQP short string (255 bytes at most), and a content header must
    # fit one frame: rows over either cannot be encoded. They must not stop the outbox, nor
    # take a delivery tag (the broker's count and the publisher's would then disagree for
    # every later confirm).
    await names.declare_queue(amqp_url)
    rows = outbox_rows(6)
    rows[2] = msgspec.structs.replace(rows[2], correlation_id="é" * 200)  # 400 bytes
    rows[4] = msgspec.structs.replace(rows[4], idempotency_key="k" * 200_000)  # > frame_max
    outbox = MemoryOutbox()
    outbox.add(rows)
    # Batches of three: the second batch goes on the channel the bad row was skipped on.
    relay = OutboxRelay(outbox, relay_connect(amqp_url, names), batch_size=3)

    await run_until_drained(relay, outbox, timeout=20)

    assert list(outbox.dead) == [3, 5]
    assert outbox.dead[3].startswith("cannot be published: ValueError: short string over 255")
    assert outbox.dead[5].startswith("cannot be published: ValueError: content header of")
    messages = await read_queue(amqp_url, names.queue)
    assert [m.correlation_id for m in messages] == [f"corr-{seq}" for seq in (1, 2, 4, 6)]
    assert outbox.count("published") == 4
    assert relay.statistics().reconnects == 0
    assert relay.statistics().unpublishable == 2


@pytest.mark.rabbitmq
async def test_rows_refused_by_a_full_queue_are_published_once_there_is_room(
    amqp_url: str, names: BrokerNames
) -> None:
    await names.declare_queue(amqp_url, max_length=2)
    rows = outbox_rows(8)
    outbox = MemoryOutbox()
    outbox.add(rows)
    # One row per batch: a quorum queue notices it is full only after an enqueue, so a whole
    # window of publishes in flight would all get in.
    relay = OutboxRelay(outbox, relay_connect(amqp_url, names), batch_size=1, reconnect_max=0.5)
    received: list[str] = []

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            await tg.start(relay.run)
            while not relay.statistics().nacked:
                await anyio.sleep(0.01)
            while outbox.count("pending"):  # a consumer making room
                received += [str(m.message_id) for m in await read_queue(amqp_url, names.queue)]
                await anyio.sleep(0.1)
            tg.cancel_scope.cancel()
    received += [str(m.message_id) for m in await read_queue(amqp_url, names.queue)]

    assert sorted(received) == sorted(row.message_id for row in rows)
    assert outbox.count("published") == len(rows)


@pytest.mark.rabbitmq
async def test_relay_stops_cleanly_when_cancelled_mid_drain(
    amqp_url: str, names: BrokerNames
) -> None:
    await names.declare_queue(amqp_url)
    outbox = MemoryOutbox()
    outbox.add(outbox_rows(20_000))
    opened: list[ConfirmedPublisher] = []
    base_connect = relay_connect(amqp_url, names)

    async def connect_and_keep() -> ConfirmedPublisher:
        opened.append(await base_connect())
        return opened[-1]

    relay = OutboxRelay(outbox, connect_and_keep)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            await tg.start(relay.run)
            while not outbox.published_batches:
                await anyio.sleep(0.01)
            tg.cancel_scope.cancel()

    assert outbox.count("pending") > 0  # it was stopped mid-drain
    assert len(opened) == 1
    assert opened[0].is_closed
    stats = relay.statistics()
    assert (stats.connected, stats.in_flight) == (False, 0)


@pytest.mark.slow
async def test_relay_started_while_the_broker_is_down_drains_once_it_is_up(
    own_node: LocalRabbitMQ,
) -> None:
    names = BrokerNames.unique("test.relay.down")
    rows = outbox_rows(2000)
    outbox = MemoryOutbox()
    outbox.add(rows)
    attempts = 0
    base_connect = relay_connect(own_node.url, names, with_queue=True)

    async def counting_connect() -> ConfirmedPublisher:
        nonlocal attempts
        attempts += 1
        return await base_connect()

    relay = OutboxRelay(outbox, counting_connect, reconnect_min=0.05, reconnect_max=0.5)

    with anyio.fail_after(90):
        async with anyio.create_task_group() as tg:
            await tg.start(relay.run)
            while attempts < 3:
                await anyio.sleep(0.02)
            assert outbox.count("pending") == len(rows)
            await anyio.to_thread.run_sync(own_node.start)
            while outbox.count("pending"):
                await anyio.sleep(0.05)
            tg.cancel_scope.cancel()
        messages = await read_queue(own_node.url, names.queue)

    assert [m.message_id for m in messages] == [row.message_id for row in rows]


@pytest.mark.slow
async def test_broker_killed_mid_drain_loses_no_row_and_keeps_first_appearances_in_order(
    own_node: LocalRabbitMQ,
) -> None:
    names = BrokerNames.unique("test.relay.kill")
    rows = outbox_rows(20_000)
    outbox = MemoryOutbox()
    outbox.add(rows)
    connect_and_declare = relay_connect(own_node.url, names, with_queue=True)
    relay = OutboxRelay(outbox, connect_and_declare, reconnect_min=0.1, reconnect_max=1.0)

    with anyio.fail_after(100):
        await anyio.to_thread.run_sync(own_node.start)
        # RabbitMQ 3.10.8 can bring a quorum queue created moments before a SIGKILL back as
        # an empty new member (log index 0, term 0, no leader): the broker's own loss, not the
        # relay's. Queues in service have outlived a restart; so has this one.
        await (await connect_and_declare()).close()
        await anyio.to_thread.run_sync(own_node.stop)
        await anyio.to_thread.run_sync(own_node.start)
        async with anyio.create_task_group() as tg:
            await tg.start(relay.run)
            while outbox.count("published") < 3000:
                await anyio.sleep(0.005)
            await anyio.to_thread.run_sync(own_node.kill)  # SIGKILL, mid-drain
            published_at_kill = outbox.count("published")
            await anyio.to_thread.run_sync(own_node.start)  # same ports, same data
            while outbox.count("pending"):
                await anyio.sleep(0.05)
            tg.cancel_scope.cancel()
        messages = await read_queue(own_node.url, names.queue)

    ids = [str(m.message_id) for m in messages]
    lost = {row.message_id for row in rows} - set(ids)
    duplicates = len(ids) - len(set(ids))
    print(
        f"\nkill mid-drain: {published_at_kill} of {len(rows)} marked published at the kill, "
        f"{len(ids)} on the queue after recovery, lost {len(lost)}, duplicates {duplicates}, "
        f"reconnects {relay.statistics().reconnects}"
    )
    assert published_at_kill < len(rows)  # the kill did land mid-drain
    assert relay.statistics().reconnects >= 1
    assert lost == set()
    for partner, seqs in first_appearances(messages, rows).items():
        assert seqs == sorted(seqs), f"{partner}: first appearances out of seq order"
