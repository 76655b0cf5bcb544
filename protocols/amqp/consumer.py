"""Consume one quorum queue with manual acks, reconnecting and redeclaring when the broker lets go.

The handler decides each delivery's fate and the consumer carries it out on the wire: "ack"
(done, the handler has kept what it must), "requeue" (try again later: the nack waits
`requeue_delay` first, so a store that cannot commit is not hammered; the queue's delivery
limit is the backstop) or "reject" (dead-letter it now, through the queue's dead-letter
exchange). Nothing is acked before the handler returns: the handler commits, then the broker
forgets. A handler that raises is logged and its delivery requeued after the delay. Every
line logged while a delivery is handled carries its `message_id` and `correlation_id`.

Backpressure: the broker pushes at most `prefetch` unacknowledged deliveries; they wait in a
stream of that size for one of `lanes` tasks. A slow handler leaves deliveries unacked, so the
broker stops sending; memory never grows past the prefetch.

Recovery: a session is one connection, one channel, one consumer. It ends when the connection
or channel closes, or when the broker cancels the consumer (basic.cancel: the queue was
deleted). Then the consumer backs off, connects again, redeclares the exchange, dead letters and
queue (so a deleted queue comes back with its bindings) and consumes again. Deliveries in
flight when a session ends are not acked; the broker delivers them again and the handler's
dedup (by message id) answers them.

Built on aiormq, as the publisher is. aiormq runs each delivery callback as a task of its own;
ours only hands the delivery to the bounded stream, so the work runs in our task group.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Literal

import aiormq
import anyio
import msgspec
from aiormq.abc import AbstractChannel, DeliveredMessage
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream

from canonical.backoff import backoff_delay
from canonical.trace import log_context
from canonical.tracecontext import parse_traceparent
from protocols.amqp.topology import (
    DEFAULT_DEAD_LETTER_EXCHANGE,
    DEFAULT_DELIVERY_LIMIT,
    DEFAULT_MAX_LENGTH,
    DEFAULT_PARKING_LOT,
    declare_consumer_queue,
    declare_dead_letters,
)

__all__ = [
    "DEFAULT_LANES",
    "DEFAULT_PREFETCH",
    "DEFAULT_RECONNECT_MAX",
    "DEFAULT_RECONNECT_MIN",
    "DEFAULT_REQUEUE_DELAY",
    "ConsumerStatistics",
    "Handler",
    "Inbound",
    "QueueConsumer",
    "QueueSpec",
    "Settlement",
]

log = logging.getLogger(__name__)

DEFAULT_PREFETCH = 64
DEFAULT_LANES = 16
DEFAULT_REQUEUE_DELAY = 1.0
DEFAULT_RECONNECT_MIN = 0.2
DEFAULT_RECONNECT_MAX = 10.0
DEFAULT_CONNECT_TIMEOUT = 10.0
# Closing a connection to a dead peer must not hold up a reconnect or a shutdown.
CLOSE_TIMEOUT = 5.0

Settlement = Literal["ack", "requeue", "reject"]

# What ends a session and is worth a reconnect: the connection is gone, or the channel was
# closed under us (404 when the queue vanished between declare and consume). A declare refused
# with 406 PRECONDITION_FAILED is a deployment error and propagates.
_RECOVERABLE = (
    OSError,  # TimeoutError included
    aiormq.AMQPConnectionError,
    aiormq.ChannelInvalidStateError,
    aiormq.ChannelNotFoundEntity,
    aiormq.ChannelLockedResource,
)


class Inbound(msgspec.Struct, frozen=True, kw_only=True):
    """One delivery as the handler sees it: the body and the properties that route and dedup."""

    queue: str
    exchange: str
    routing_key: str
    body: bytes
    message_id: str | None
    correlation_id: str | None
    message_type: str | None  # the AMQP `type` property
    redelivered: bool
    received_at: float  # unix seconds
    traceparent: str | None = None  # W3C header, validated (an invalid one reads as None)


Handler = Callable[[Inbound], Awaitable[Settlement]]


class QueueSpec(msgspec.Struct, frozen=True, kw_only=True):
    """The queue to consume and how it is declared: a quorum queue bound to a topic exchange."""

    queue: str
    exchange: str
    routing_keys: tuple[str, ...]
    prefetch: int = DEFAULT_PREFETCH
    delivery_limit: int = DEFAULT_DELIVERY_LIMIT
    dead_letter_exchange: str = DEFAULT_DEAD_LETTER_EXCHANGE
    parking_lot: str = DEFAULT_PARKING_LOT
    max_length: int = DEFAULT_MAX_LENGTH


class ConsumerStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """The consumer's counters since it was created."""

    delivered: int
    acked: int
    requeued: int
    rejected: int
    handler_errors: int
    sessions: int  # consumers started (the first and every recovery)
    consuming: bool


class QueueConsumer:
    """Consumes one queue through `handler`, one session after another, until cancelled."""

    def __init__(
        self,
        url: str,
        spec: QueueSpec,
        handler: Handler,
        *,
        lanes: int = DEFAULT_LANES,
        requeue_delay: float = DEFAULT_REQUEUE_DELAY,
        reconnect_min: float = DEFAULT_RECONNECT_MIN,
        reconnect_max: float = DEFAULT_RECONNECT_MAX,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    ) -> None:
        if not 1 <= lanes <= spec.prefetch:
            raise ValueError("lanes: expected between 1 and the prefetch count")
        if not 0 < reconnect_min <= reconnect_max:
            raise ValueError("reconnect_min: expected 0 < reconnect_min <= reconnect_max")
        if requeue_delay < 0:
            raise ValueError("requeue_delay: expected a non-negative number of seconds")
        self._url = url
        self._spec = spec
        self._handler = handler
        self._lanes = lanes
        self._requeue_delay = requeue_delay
        self._reconnect_min = reconnect_min
        self._reconnect_max = reconnect_max
        self._connect_timeout = connect_timeout
        self._failures = 0
        self._sessions = 0
        self._consuming = False
        self._delivered = self._acked = self._requeued = self._rejected = self._errors = 0

    @property
    def spec(self) -> QueueSpec:
        return self._spec

    def statistics(self) -> ConsumerStatistics:
        return ConsumerStatistics(
            delivered=self._delivered,
            acked=self._acked,
            requeued=self._requeued,
            rejected=self._rejected,
            handler_errors=self._errors,
            sessions=self._sessions,
            consuming=self._consuming,
        )

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Consume until cancelled; report started at once, before the broker is reached.

        The broker keeps the messages while it cannot be reached, so the gateway starts without
        it. Recoverable failures (see `_RECOVERABLE`) end a session and start another after a
        backoff; anything else (a declare refused with 406, a bug) propagates.
        """
        task_status.started()
        while True:
            try:
                why = await self._session()
            except _RECOVERABLE as exc:
                why = repr(exc)
            finally:
                self._consuming = False
            self._failures += 1
            delay = backoff_delay(
                self._failures, minimum=self._reconnect_min, maximum=self._reconnect_max
            )
            log.warning(
                "consumer of %s stopped (%s); consuming again in %.2fs",
                self._spec.queue,
                why,
                delay,
            )
            await anyio.sleep(delay)

    async def _session(self) -> str:
        """Consume on one connection until it, its channel or the consumer ends; say why."""
        connection = aiormq.Connection(self._url)
        try:
            with anyio.fail_after(self._connect_timeout):
                await connection.connect()
                channel = await connection.channel(publisher_confirms=False)
                await self._declare(channel)
                await channel.basic_qos(prefetch_count=self._spec.prefetch)
            return await self._consume(channel)
        finally:
            with anyio.move_on_after(CLOSE_TIMEOUT, shield=True):
                await connection.close()

    async def _declare(self, channel: AbstractChannel) -> None:
        spec = self._spec
        await channel.exchange_declare(spec.exchange, exchange_type="topic", durable=True)
        await declare_dead_letters(
            channel,
            exchange=spec.dead_letter_exchange,
            parking_lot=spec.parking_lot,
            max_length=spec.max_length,
        )
        await declare_consumer_queue(
            channel,
            spec.queue,
            bindings=spec.routing_keys,
            exchange=spec.exchange,
            dead_letter_exchange=spec.dead_letter_exchange,
            delivery_limit=spec.delivery_limit,
            max_length=spec.max_length,
        )

    async def _consume(self, channel: AbstractChannel) -> str:
        ended = anyio.Event()
        why = ["the session ended"]

        def end(reason: str) -> None:
            if not ended.is_set():
                why[0] = reason
                ended.set()

        send, receive = anyio.create_memory_object_stream[DeliveredMessage](self._spec.prefetch)

        async def on_delivery(message: DeliveredMessage) -> None:
            # A closed stream means the session is ending: unacked, the message comes again.
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                # Never waits: the broker sends at most `prefetch` unacked deliveries.
                await send.send(message)

        async def on_cancel(frame: object) -> None:
            end("the broker cancelled the consumer (queue deleted?)")

        async def watch_closing() -> None:
            try:
                await channel.closing
            except asyncio.CancelledError:
                # aiormq cancels the future when it closes the channel itself; only our own
                # cancellation must propagate.
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
            except Exception as exc:  # the broker's or the socket's close reason
                end(f"channel closed: {exc!r}")
                return
            end("channel closed")

        channel.on_consumer_cancel_callbacks.add(on_cancel)
        async with send, receive:
            # Before the task group: its failure is a plain error for `run`, and deliveries
            # arriving before the lanes start wait in the stream.
            await channel.basic_consume(self._spec.queue, on_delivery, no_ack=False)
            async with anyio.create_task_group() as session:
                session.start_soon(watch_closing)
                for lane in range(self._lanes):
                    session.start_soon(self._lane, channel, receive.clone(), name=f"lane-{lane}")
                self._started()
                await ended.wait()
                session.cancel_scope.cancel()
        return why[0]

    def _started(self) -> None:
        self._sessions += 1
        self._consuming = True
        self._failures = 0
        log.info("consuming %s", self._spec.queue)

    async def _lane(
        self, channel: AbstractChannel, deliveries: MemoryObjectReceiveStream[DeliveredMessage]
    ) -> None:
        async with deliveries:
            async for delivered in deliveries:
                self._delivered += 1
                properties = delivered.header.properties
                # Lines the handler logs, and the settling's, carry the message's ids.
                with log_context(
                    message_id=properties.message_id or None,
                    correlation_id=properties.correlation_id or None,
                ):
                    settlement = await self._handle(delivered)
                    try:
                        await self._settle(channel, delivered, settlement)
                    except _RECOVERABLE as exc:
                        # The session is ending; the broker delivers it again on the next one.
                        log.info("could not %s a delivery: %r", settlement, exc)

    async def _handle(self, delivered: DeliveredMessage) -> Settlement:
        properties = delivered.header.properties
        inbound = Inbound(
            queue=self._spec.queue,
            exchange=delivered.exchange or "",
            routing_key=delivered.routing_key or "",
            body=delivered.body,
            message_id=properties.message_id or None,
            correlation_id=properties.correlation_id or None,
            message_type=properties.message_type or None,
            redelivered=bool(delivered.redelivered),
            received_at=time.time(),
            traceparent=_traceparent(properties.headers),
        )
        try:
            return await self._handler(inbound)
        except Exception:
            self._errors += 1
            log.exception("handler failed on a delivery from %s; requeueing", self._spec.queue)
            return "requeue"

    async def _settle(
        self, channel: AbstractChannel, delivered: DeliveredMessage, settlement: Settlement
    ) -> None:
        tag = delivered.delivery_tag
        if tag is None:  # only a basic.get or a return has none; we consume
            return
        match settlement:
            case "ack":
                await channel.basic_ack(tag)
                self._acked += 1
            case "requeue":
                # Held (and counted against the prefetch) meanwhile: backpressure, not a spin.
                await anyio.sleep(self._requeue_delay)
                await channel.basic_nack(tag, requeue=True)
                self._requeued += 1
            case "reject":
                await channel.basic_reject(tag, requeue=False)
                self._rejected += 1


def _traceparent(headers: Mapping[str, object] | None) -> str | None:
    """Return the message's W3C `traceparent` header if valid (str or bytes), else None."""
    if not headers:
        return None
    value = headers.get("traceparent")
    return parse_traceparent(value) if isinstance(value, str | bytes) else None
