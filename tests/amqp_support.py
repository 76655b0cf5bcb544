"""Shared pieces of the AMQP and relay tests: outbox rows, an in-memory outbox, broker names."""

from __future__ import annotations

import bisect
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import aio_pika
import aiormq
import orjson
from aio_pika.abc import AbstractIncomingMessage

from canonical.ids import new_message_id
from canonical.outbox import OutboxRecord, routing_key
from protocols.amqp import declare_consumer_queue


def outbox_rows(
    count: int,
    *,
    partners: Sequence[str] = ("acme", "globex", "initech"),
    document_type: str = "purchase_order",
    first_seq: int = 1,
) -> list[OutboxRecord]:
    """Rows as the store would hand them out: seq order, partners interleaved."""
    rows = []
    for seq in range(first_seq, first_seq + count):
        partner = partners[seq % len(partners)]
        message_id = new_message_id()
        rows.append(
            OutboxRecord(
                seq=seq,
                message_id=message_id,
                partner_id=partner,
                document_type=document_type,
                schema_version=1,
                routing_key=routing_key(document_type, partner),
                correlation_id=f"corr-{seq}",
                causation_id=f"cause-{seq}" if seq % 2 else None,
                idempotency_key=f"{partner}:po-{seq}",
                body=orjson.dumps({"message_id": message_id, "po_number": f"PO-{seq:06d}"}),
                created_at=time.time(),
            )
        )
    return rows


@dataclass
class MemoryOutbox:
    """An in-memory `OutboxSource`: the relay's view of the store, with what it was told."""

    rows: dict[int, OutboxRecord] = field(default_factory=dict)
    state: dict[int, str] = field(default_factory=dict)
    dead: dict[int, str] = field(default_factory=dict)
    published_batches: list[list[int]] = field(default_factory=list)
    _order: list[int] = field(default_factory=list)

    def add(self, rows: Sequence[OutboxRecord]) -> None:
        for row in rows:
            self.rows[row.seq] = row
            self.state[row.seq] = "pending"
            bisect.insort(self._order, row.seq)

    async def pending(self, limit: int, after_seq: int = 0) -> list[OutboxRecord]:
        start = bisect.bisect_right(self._order, after_seq)
        out: list[OutboxRecord] = []
        for seq in self._order[start:]:
            if self.state[seq] == "pending":
                out.append(self.rows[seq])
                if len(out) == limit:
                    break
        return out

    async def mark_published(self, seqs: Sequence[int]) -> None:
        self.published_batches.append(list(seqs))
        for seq in seqs:
            self.state[seq] = "published"

    async def mark_dead(self, seq: int, reason: str) -> None:
        self.state[seq] = "dead"
        self.dead[seq] = reason

    def count(self, state: str) -> int:
        return sum(1 for s in self.state.values() if s == state)


@dataclass(frozen=True)
class BrokerNames:
    """Exchange and queue names of one test, so tests on the shared node never meet."""

    exchange: str
    dead_letter_exchange: str
    parking_lot: str
    queue: str

    @classmethod
    def unique(cls, prefix: str) -> BrokerNames:
        tag = f"{prefix}.{uuid.uuid4().hex[:8]}"
        return cls(f"{tag}.events", f"{tag}.dlx", f"{tag}.parking-lot", f"{tag}.queue")

    async def declare_queue(self, url: str, bindings: Sequence[str] = ("#",), **kw: int) -> None:
        """Declare the exchange and the test's consumer queue bound to it."""
        async with aiormq.connect(url) as connection:
            channel = await connection.channel()
            await channel.exchange_declare(self.exchange, exchange_type="topic", durable=True)
            await declare_consumer_queue(
                channel,
                self.queue,
                bindings=bindings,
                exchange=self.exchange,
                dead_letter_exchange=self.dead_letter_exchange,
                **kw,
            )

    async def delete(self, url: str) -> None:
        async with aiormq.connect(url) as connection:
            channel = await connection.channel()
            for queue in (self.queue, self.parking_lot):
                await channel.queue_delete(queue)
            for exchange in (self.exchange, self.dead_letter_exchange):
                await channel.exchange_delete(exchange)


async def queue_depth(url: str, queue: str) -> int:
    async with aiormq.connect(url) as connection:
        channel = await connection.channel()
        declared = await channel.queue_declare(queue, passive=True)
        return declared.message_count or 0


async def read_queue(url: str, queue: str) -> list[AbstractIncomingMessage]:
    """Take every message now in `queue` (consumed and acked), in queue order."""
    count = await queue_depth(url, queue)
    messages: list[AbstractIncomingMessage] = []
    if count == 0:
        return messages
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=1000)
        source = await channel.get_queue(queue)
        # Acked one by one: messages published after the count was taken may be pushed too,
        # and unacked they go back to the queue when the channel closes (no_ack lost them).
        async with source.iterator() as incoming:
            async for message in incoming:
                await message.ack()
                messages.append(message)
                if len(messages) == count:
                    break
    return messages
