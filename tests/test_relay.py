"""The outbox relay's rules, with an in-memory outbox and a scripted broker (no network)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import anyio
import anyio.lowlevel
import pytest
from amqp_support import MemoryOutbox, outbox_rows

from actors.relay import OutboxRelay
from canonical.backoff import backoff_delay
from canonical.outbox import OutboxRecord
from protocols.amqp import BrokerConnectionLost, Delivery, Outcome

pytestmark = pytest.mark.anyio


class ScriptedBroker:
    """Answers each publish by `answer(row, attempt)`; can drop one connection mid-batch."""

    def __init__(
        self,
        answer: Callable[[OutboxRecord, int], Outcome] = lambda row, attempt: "confirmed",
        *,
        drop_after: int | None = None,
    ) -> None:
        self.answer = answer
        self.drop_after = drop_after  # answers given before the connection drops, once
        self.attempts: Counter[int] = Counter()
        self.published: list[int] = []
        self.publishers: list[ScriptedPublisher] = []

    async def connect(self) -> ScriptedPublisher:
        publisher = ScriptedPublisher(self)
        self.publishers.append(publisher)
        return publisher


class ScriptedPublisher:
    def __init__(self, broker: ScriptedBroker) -> None:
        self.broker = broker
        self.closed = False

    async def publish_batch(self, messages: Sequence[OutboxRecord]) -> list[Delivery]:
        await anyio.lowlevel.checkpoint()
        broker = self.broker
        deliveries: list[Delivery] = []
        for row in messages:
            if broker.drop_after is not None and len(broker.published) >= broker.drop_after:
                broker.drop_after = None
                unanswered = messages[len(deliveries) :]
                deliveries += [
                    Delivery(message_id=r.message_id, outcome="lost") for r in unanswered
                ]
                raise BrokerConnectionLost("dropped", deliveries=deliveries)
            broker.attempts[row.seq] += 1
            broker.published.append(row.seq)
            outcome = broker.answer(row, broker.attempts[row.seq])
            reply = (312, "NO_ROUTE") if outcome == "returned" else (0, "")
            deliveries.append(
                Delivery(
                    message_id=row.message_id,
                    outcome=outcome,
                    reply_code=reply[0],
                    reply_text=reply[1],
                    latency=0.001,
                )
            )
        return deliveries

    async def close(self) -> None:
        self.closed = True


async def run_until_drained(relay: OutboxRelay, outbox: MemoryOutbox) -> None:
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(relay.run)
            while outbox.count("pending"):
                await anyio.sleep(0.01)
            tg.cancel_scope.cancel()


@pytest.mark.parametrize("attempt", [1, 2, 3, 6, 50, 10_000])
def test_backoff_delay_doubles_from_the_minimum_with_jitter_up_to_the_maximum(
    attempt: int,
) -> None:
    nominal = min(10.0, 0.2 * 2 ** min(attempt - 1, 64))

    delays = [backoff_delay(attempt, minimum=0.2, maximum=10.0) for _ in range(200)]

    assert all(nominal / 2 <= d <= nominal for d in delays)
    assert len(set(delays)) > 1  # jittered


async def test_confirmed_rows_are_marked_published_in_one_store_call_per_batch() -> None:
    outbox = MemoryOutbox()
    outbox.add(outbox_rows(10))
    broker = ScriptedBroker()

    await run_until_drained(OutboxRelay(outbox, broker.connect, batch_size=4), outbox)

    assert outbox.published_batches == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]


async def test_nacked_row_stays_pending_and_is_published_again_on_the_next_pass() -> None:
    outbox = MemoryOutbox()
    outbox.add(outbox_rows(6))
    broker = ScriptedBroker(
        lambda row, attempt: "nacked" if row.seq == 3 and attempt == 1 else "confirmed"
    )

    await run_until_drained(OutboxRelay(outbox, broker.connect, reconnect_min=0.01), outbox)

    assert broker.published == [1, 2, 3, 4, 5, 6, 3]
    assert outbox.count("published") == 6
    assert len(broker.publishers) == 1  # a nack is no reason to reconnect


async def test_returned_row_is_marked_dead_with_the_brokers_reason() -> None:
    outbox = MemoryOutbox()
    outbox.add(outbox_rows(3))
    broker = ScriptedBroker(lambda row, attempt: "returned" if row.seq == 2 else "confirmed")

    await run_until_drained(OutboxRelay(outbox, broker.connect), outbox)

    assert outbox.dead == {2: "unroutable: 312 NO_ROUTE (routing key 'purchase_order.initech')"}
    assert outbox.published_batches == [[1, 3]]


async def test_statistics_name_the_routing_keys_no_queue_took_until_one_is_confirmed() -> None:
    outbox = MemoryOutbox()
    outbox.add(outbox_rows(3))
    bound = {"purchase_order.acme", "purchase_order.globex"}
    broker = ScriptedBroker(
        lambda row, attempt: "confirmed" if row.routing_key in bound else "returned"
    )
    relay = OutboxRelay(outbox, broker.connect)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(relay.run)
            while outbox.count("pending"):
                await anyio.sleep(0.01)
            while_unbound = relay.statistics().unroutable
            bound.add("purchase_order.initech")  # the operator binds a queue
            outbox.add(outbox_rows(3, first_seq=4))
            relay.wake()
            while outbox.count("pending"):
                await anyio.sleep(0.01)
            once_bound = relay.statistics().unroutable
            tg.cancel_scope.cancel()

    assert while_unbound == ("purchase_order.initech",)
    assert once_bound == ()


async def test_lost_connection_keeps_confirmed_rows_and_republishes_the_rest_in_order() -> None:
    outbox = MemoryOutbox()
    outbox.add(outbox_rows(10))
    broker = ScriptedBroker(drop_after=4)
    relay = OutboxRelay(outbox, broker.connect, reconnect_min=0.01, reconnect_max=0.05)

    await run_until_drained(relay, outbox)

    assert outbox.published_batches == [[1, 2, 3, 4], [5, 6, 7, 8, 9, 10]]
    assert broker.published == list(range(1, 11))
    assert [p.closed for p in broker.publishers] == [True, True]
    assert relay.statistics().reconnects == 1


async def test_statistics_count_each_outcome_and_the_observer_sees_each_confirm() -> None:
    outbox = MemoryOutbox()
    outbox.add(outbox_rows(5))
    outcomes: dict[int, Outcome] = {2: "returned", 4: "nacked"}
    broker = ScriptedBroker(
        lambda row, attempt: outcomes.get(row.seq, "confirmed") if attempt == 1 else "confirmed"
    )
    latencies: list[float] = []
    relay = OutboxRelay(outbox, broker.connect, reconnect_min=0.01, on_confirm=latencies.append)

    await run_until_drained(relay, outbox)

    stats = relay.statistics()
    assert (stats.published, stats.confirmed, stats.nacked, stats.returned) == (6, 4, 1, 1)
    assert (stats.in_flight, stats.last_batch_size, stats.reconnects) == (0, 1, 0)
    assert latencies == [0.001] * 4


async def test_wake_publishes_rows_committed_while_idle_without_waiting_out_idle_wait() -> None:
    class CountingOutbox(MemoryOutbox):
        empty_reads = 0

        async def pending(self, limit: int, after_seq: int = 0) -> list[OutboxRecord]:
            rows = await super().pending(limit, after_seq)
            self.empty_reads += not rows
            return rows

    outbox = CountingOutbox()
    broker = ScriptedBroker()
    relay = OutboxRelay(outbox, broker.connect, idle_wait=3600)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            await tg.start(relay.run)
            while not outbox.empty_reads:  # the relay is now waiting for a wake-up
                await anyio.sleep(0.01)
            outbox.add(outbox_rows(3))
            relay.wake()
            while outbox.count("pending"):
                await anyio.sleep(0.01)
            tg.cancel_scope.cancel()

    assert broker.published == [1, 2, 3]
