"""The confirmed publisher against a real RabbitMQ node: every publish gets the broker's answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import aio_pika
import anyio
import pytest
from amqp_support import BrokerNames, outbox_rows, queue_depth, read_queue
from anyio.abc import SocketAttribute, SocketStream, TaskStatus

from gateway.localbroker import LocalRabbitMQ, free_port
from protocols.amqp import BrokerConnectionLost, ConfirmedPublisher, connect

pytestmark = [pytest.mark.anyio, pytest.mark.rabbitmq]


@pytest.fixture
async def names(amqp_url: str) -> AsyncIterator[BrokerNames]:
    names = BrokerNames.unique("test.publisher")
    yield names
    await names.delete(amqp_url)


@pytest.fixture
async def publisher(amqp_url: str, names: BrokerNames) -> AsyncIterator[ConfirmedPublisher]:
    await names.declare_queue(amqp_url, bindings=["purchase_order.*"])
    async with await connect(amqp_url, exchange=names.exchange, window=8) as publisher:
        yield publisher


@pytest.fixture
def rabbitmq_port(rabbitmq: LocalRabbitMQ) -> int:
    return rabbitmq.port


class CuttableProxy:
    """A TCP proxy in front of the broker whose connections the test can cut at will."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._scopes: list[anyio.CancelScope] = []

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        self.port = listener.extra(SocketAttribute.local_port)
        async with listener:
            task_status.started()
            await listener.serve(self._relay)

    def cut(self) -> None:
        for scope in self._scopes:
            scope.cancel()

    async def _relay(self, client: SocketStream) -> None:
        async with client, await anyio.connect_tcp("127.0.0.1", self.target_port) as upstream:
            with anyio.CancelScope() as scope:
                self._scopes.append(scope)
                async with anyio.create_task_group() as pumps:
                    pumps.start_soon(self._pump, client, upstream)
                    pumps.start_soon(self._pump, upstream, client)

    @staticmethod
    async def _pump(source: SocketStream, sink: SocketStream) -> None:
        async for chunk in source:
            await sink.send(chunk)


async def test_confirmed_message_carries_every_property_and_header(
    amqp_url: str, names: BrokerNames, publisher: ConfirmedPublisher
) -> None:
    row = outbox_rows(1, first_seq=1)[0]  # odd seq: has a causation id

    [delivery] = await publisher.publish_batch([row])

    assert delivery.outcome == "confirmed"
    assert delivery.message_id == row.message_id
    [message] = await read_queue(amqp_url, names.queue)
    assert message.body == row.body
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.message_id == row.message_id
    assert message.correlation_id == row.correlation_id
    assert message.type == "purchase_order"
    assert message.app_id == "partner-gateway"
    assert message.content_type == "application/json"
    assert isinstance(message.timestamp, datetime)
    assert message.timestamp.timestamp() == int(row.created_at)  # AMQP keeps whole seconds
    assert message.headers == {
        "causation_id": row.causation_id,
        "partner_id": row.partner_id,
        "schema_version": 1,
        "idempotency_key": row.idempotency_key,
    }


async def test_message_without_causation_carries_no_causation_header(
    amqp_url: str, names: BrokerNames, publisher: ConfirmedPublisher
) -> None:
    row = outbox_rows(1, first_seq=2)[0]  # even seq: no causation id

    await publisher.publish_batch([row])

    [message] = await read_queue(amqp_url, names.queue)
    assert "causation_id" not in message.headers


async def test_unroutable_message_is_returned_while_the_rest_of_the_batch_confirms(
    names: BrokerNames, publisher: ConfirmedPublisher
) -> None:
    rows = outbox_rows(5)
    stray = outbox_rows(1, document_type="invoice", first_seq=6)  # no queue bound for invoices

    deliveries = await publisher.publish_batch([*rows[:2], *stray, *rows[2:]])

    assert [d.outcome for d in deliveries] == ["confirmed"] * 2 + ["returned"] + ["confirmed"] * 3
    assert deliveries[2].message_id == stray[0].message_id
    assert (deliveries[2].reply_code, deliveries[2].reply_text) == (312, "NO_ROUTE")


async def test_batch_larger_than_the_window_reaches_the_queue_in_order(
    amqp_url: str, names: BrokerNames, publisher: ConfirmedPublisher
) -> None:
    rows = outbox_rows(300)  # window is 8

    deliveries = await publisher.publish_batch(rows)

    assert {d.outcome for d in deliveries} == {"confirmed"}
    messages = await read_queue(amqp_url, names.queue)
    assert [m.message_id for m in messages] == [row.message_id for row in rows]


async def test_publishes_beyond_a_full_queue_are_nacked(amqp_url: str, names: BrokerNames) -> None:
    await names.declare_queue(amqp_url, max_length=1)
    rows = outbox_rows(5)
    outcomes = []
    async with await connect(amqp_url, exchange=names.exchange) as publisher:
        for row in rows:  # one by one: a quorum queue notices it is full after an enqueue
            [delivery] = await publisher.publish_batch([row])
            outcomes.append(delivery.outcome)

    assert outcomes[0] == "confirmed"
    assert outcomes[-1] == "nacked"
    assert set(outcomes) == {"confirmed", "nacked"}
    assert await queue_depth(amqp_url, names.queue) == outcomes.count("confirmed")


async def test_connect_to_a_port_without_broker_raises_connection_lost() -> None:
    url = f"amqp://guest:guest@127.0.0.1:{free_port()}/"

    with pytest.raises(BrokerConnectionLost) as raised:
        await connect(url, connect_timeout=5)

    assert "guest" not in str(raised.value)  # the URL's credentials stay out of messages


async def test_channel_closed_by_the_broker_loses_the_batch_and_the_publisher(
    amqp_url: str,
) -> None:
    rows = outbox_rows(3)
    async with await connect(amqp_url, exchange="test.publisher.no-such-exchange") as publisher:
        with pytest.raises(BrokerConnectionLost) as raised:
            await publisher.publish_batch(rows)
        assert [d.outcome for d in raised.value.deliveries] == ["lost"] * 3

        with pytest.raises(BrokerConnectionLost):
            await publisher.publish_batch(rows)


async def test_connection_cut_mid_batch_keeps_the_answers_received_before(
    amqp_url: str, names: BrokerNames, rabbitmq_port: int
) -> None:
    await names.declare_queue(amqp_url)
    rows = outbox_rows(20_000)
    proxy = CuttableProxy(rabbitmq_port)

    async def cut_once_messages_arrive() -> None:
        while await queue_depth(amqp_url, names.queue) < 500:
            await anyio.sleep(0.02)
        proxy.cut()

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            await tg.start(proxy.run)
            url = f"amqp://guest:guest@127.0.0.1:{proxy.port}/"
            async with await connect(url, exchange=names.exchange, window=512) as publisher:
                tg.start_soon(cut_once_messages_arrive)
                with pytest.raises(BrokerConnectionLost) as raised:
                    await publisher.publish_batch(rows)
            tg.cancel_scope.cancel()

    deliveries = raised.value.deliveries
    assert [d.message_id for d in deliveries] == [row.message_id for row in rows]
    confirmed = {d.message_id for d in deliveries if d.outcome == "confirmed"}
    assert confirmed
    assert {d.outcome for d in deliveries} == {"confirmed", "lost"}
    on_queue = {m.message_id for m in await read_queue(amqp_url, names.queue)}
    assert confirmed <= on_queue
