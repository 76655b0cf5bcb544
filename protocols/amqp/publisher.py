"""Publish batches to RabbitMQ with publisher confirms, at most `window` unconfirmed at once.

Every publish is persistent and `mandatory`; each message gets one answer (`Delivery`):
confirmed, nacked (the broker refused responsibility: publish it again), returned (unroutable,
with the broker's reply code and text, e.g. 312 NO_ROUTE), lost (the connection died first:
it may or may not have reached a queue) or unpublishable (AMQP cannot carry it, e.g. a
correlation id over 255 bytes: never sent, the reason in `reply_text`).

Built on aiormq rather than aio-pika: aiormq owns the connection, the channel, the reading
of acks, nacks and returns, and the future kept per delivery tag (a `multiple=True` ack
resolves a range; a basic.return, which arrives before the confirm, fails its publish by
`message_id`). Writing is ours: a window of publishes is encoded in one pass
(`frames.encode_publish`) and handed to aiormq's writer as one chunk under the channel lock,
so frames reach the wire in batch order (per-partner order in a queue) with one socket write
per window instead of one per message. Message ids must be unique among the messages in
flight on one publisher.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal, Protocol, cast

import aiormq
import anyio
import msgspec
from aiormq import spec
from aiormq.abc import AbstractChannel, ChannelFrame

from canonical.errors import GatewayError
from canonical.tracecontext import traceparent_of
from protocols.amqp.frames import encode_publish
from protocols.amqp.topology import DEFAULT_EVENTS_EXCHANGE

__all__ = [
    "APP_ID",
    "DEFAULT_CONFIRM_TIMEOUT",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_WINDOW",
    "BrokerConnectionLost",
    "ConfirmedPublisher",
    "Delivery",
    "Outcome",
    "Publishable",
    "connect",
]

log = logging.getLogger(__name__)

APP_ID = "partner-gateway"
DEFAULT_WINDOW = 512
DEFAULT_CONNECT_TIMEOUT = 10.0
# A publish still unanswered after this long means the broker is wedged (a stopped node, a
# half-open TCP connection): the connection is dropped and the batch reported lost.
DEFAULT_CONFIRM_TIMEOUT = 30.0
# Closing a connection to a dead peer must not hold up a reconnect or a shutdown.
CLOSE_TIMEOUT = 5.0

Outcome = Literal["confirmed", "nacked", "returned", "lost", "unpublishable"]

# What aiormq raises once the connection is gone: socket errors, connection close frames, a
# closed channel, a timeout of our own (TimeoutError is an OSError).
_CONNECTION_FAILURES = (OSError, aiormq.AMQPConnectionError, aiormq.ChannelInvalidStateError)
# A publish also loses its channel when the broker closes it (404 for a deleted exchange): a
# reconnect redeclares the topology. During `connect`, the same error is a refused declare.
_PUBLISH_FAILURES = (*_CONNECTION_FAILURES, aiormq.AMQPChannelError)
# What encoding a message AMQP cannot carry raises (a short string over 255 bytes, a number
# out of its field's range, a string that is not valid UTF-8).
_UNENCODABLE = (ValueError, TypeError, OverflowError, struct.error)


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """The broker's answer to one publish."""

    message_id: str
    outcome: Outcome
    reply_code: int = 0  # basic.return's code when returned, e.g. 312
    reply_text: str = ""  # basic.return's text when returned, e.g. "NO_ROUTE"; why unpublishable
    latency: float = 0.0  # seconds from publish to the broker's answer (0 when lost)


class BrokerConnectionLost(GatewayError, ConnectionError):
    """The broker connection or channel is gone (or never came up); reconnect to go on.

    Raised by `connect` and by `publish_batch`. When a batch was under way, `deliveries` holds
    one `Delivery` per message of it, in order: those answered before the loss keep their
    answer, the rest are "lost". It is a `ConnectionError`, so callers that only know the
    builtin tree (the relay) catch it too.
    """

    status, reason, title = 503, "broker-unavailable", "Message broker unavailable"

    def __init__(self, detail: str, *, deliveries: Sequence[Delivery] = ()) -> None:
        super().__init__(detail)
        self.deliveries = tuple(deliveries)


class Publishable(Protocol):
    """What the publisher reads from a message; `canonical.outbox.OutboxRecord` has all of it."""

    @property
    def message_id(self) -> str: ...
    @property
    def correlation_id(self) -> str: ...
    @property
    def causation_id(self) -> str | None: ...
    @property
    def partner_id(self) -> str: ...
    @property
    def document_type(self) -> str: ...
    @property
    def schema_version(self) -> int: ...
    @property
    def idempotency_key(self) -> str: ...
    @property
    def routing_key(self) -> str: ...
    @property
    def body(self) -> bytes: ...
    @property
    def created_at(self) -> float: ...


def _cancel_requested() -> bool:
    """Whether this task itself is being cancelled (not merely handed a CancelledError).

    aiormq fails pending confirms with CancelledError when it closes a channel; that one must
    be read as a lost connection, while a real cancellation must propagate.
    """
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def connect(
    url: str,
    *,
    exchange: str = DEFAULT_EVENTS_EXCHANGE,
    window: int = DEFAULT_WINDOW,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    confirm_timeout: float = DEFAULT_CONFIRM_TIMEOUT,
    declare: Callable[[AbstractChannel], Awaitable[None]] | None = None,
    app_id: str = APP_ID,
) -> ConfirmedPublisher:
    """Open a connection and a confirming channel, run `declare(channel)`, return a publisher.

    `declare` is where the caller declares its topology (`topology.declare_topology`), so a
    reconnect redeclares it. Raises `BrokerConnectionLost` when the broker cannot be reached,
    refuses the login, or drops the connection within `connect_timeout` seconds; other broker errors
    (a declare refused with 406 PRECONDITION_FAILED) propagate as aiormq raised them.
    """
    if window < 1:
        raise ValueError("window: expected at least 1")
    connection = aiormq.Connection(url)
    address = f"{connection.url.host}:{connection.url.port}"  # never the URL: it holds a password
    try:
        with anyio.fail_after(connect_timeout):
            await connection.connect()
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            if declare is not None:
                await declare(channel)
    except BaseException as exc:
        connection_failed = isinstance(exc, _CONNECTION_FAILURES) or connection.is_closed
        with anyio.move_on_after(CLOSE_TIMEOUT, shield=True):
            await connection.close()
        if isinstance(exc, Exception) and connection_failed:
            raise BrokerConnectionLost(f"no broker connection to {address}: {exc!r}") from exc
        raise
    return ConfirmedPublisher(
        connection,
        cast(aiormq.Channel, channel),
        address=address,
        exchange=exchange,
        window=window,
        confirm_timeout=confirm_timeout,
        app_id=app_id,
    )


class ConfirmedPublisher:
    """One connection and one confirming channel, publishing batches to one exchange.

    Not safe for two batches at once: a caller publishes a batch, reads the answers, then the
    next. Once the connection is lost the publisher stays unusable; `close` it and `connect`
    again.
    """

    def __init__(
        self,
        connection: aiormq.Connection,
        channel: aiormq.Channel,
        *,
        address: str,
        exchange: str,
        window: int,
        confirm_timeout: float,
        app_id: str,
    ) -> None:
        self._connection = connection
        self._channel = channel
        self._address = address
        self._exchange = exchange
        self._window = window
        self._confirm_timeout = confirm_timeout
        self._app_id = app_id
        self._lost: BaseException | None = None

    @property
    def channel(self) -> AbstractChannel:
        """The confirming channel, for declares (not for publishing around the window)."""
        return self._channel

    @property
    def is_closed(self) -> bool:
        return self._lost is not None or self._connection.is_closed or self._channel.is_closed

    async def __aenter__(self) -> ConfirmedPublisher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection, waiting at most CLOSE_TIMEOUT seconds; safe to call twice."""
        with anyio.move_on_after(CLOSE_TIMEOUT, shield=True):
            await self._connection.close()

    async def publish_batch(self, messages: Sequence[Publishable]) -> list[Delivery]:
        """Publish `messages` in order through the window; return one `Delivery` per message.

        Raises `BrokerConnectionLost` (with the answers so far) if the connection or channel
        dies during the batch, or was dead already.
        """
        if self.is_closed:
            raise BrokerConnectionLost(
                f"connection to {self._address} is closed",
                deliveries=[Delivery(message_id=m.message_id, outcome="lost") for m in messages],
            )
        answers: list[Delivery | None] = [None] * len(messages)
        for start in range(0, len(messages), self._window):
            chunk = messages[start : start + self._window]
            try:
                await self._publish_window(chunk, answers, start)
            except _PUBLISH_FAILURES as exc:
                await self._abort(exc)
            except asyncio.CancelledError as exc:
                if _cancel_requested():
                    raise
                await self._abort(exc)
            if self._lost is not None:
                break
        deliveries = [
            answer if answer is not None else Delivery(message_id=m.message_id, outcome="lost")
            for answer, m in zip(answers, messages, strict=True)
        ]
        if self._lost is not None:
            raise BrokerConnectionLost(
                f"connection to {self._address} lost: {self._lost!r}", deliveries=deliveries
            ) from self._lost
        return deliveries

    async def _publish_window(
        self, messages: Sequence[Publishable], answers: list[Delivery | None], offset: int
    ) -> None:
        """Write up to `window` publishes as one socket write, then collect their confirms.

        aiormq's `basic_publish` costs a lock, a timeout scope, a pamqp marshal and a socket
        write per message; here the frames of the whole window are encoded in one pass
        (`frames.encode_publish`) and handed to aiormq's writer at once, while the confirm
        bookkeeping stays aiormq's: a future per delivery tag (acks with multiple=True resolve a
        range, a nack fails it with DeliveryError) and the message-id map through which a
        basic.return fails its publish with PublishError. The channel lock keeps any other
        publish on this channel from taking delivery tags in between.
        """
        channel = self._channel
        frame_max = channel.max_content_size + channel.CONTENT_FRAME_SIZE
        pending: dict[asyncio.Future[object], int] = {}
        tags = channel.message_id_delivery_tag
        tagged: list[tuple[str, int]] = []
        started = time.perf_counter()
        try:
            async with channel.lock:
                payload = bytearray()
                for index, message in enumerate(messages, start=offset):
                    try:
                        payload += self._encode(message, channel.number, frame_max)
                    except _UNENCODABLE as exc:
                        # Never sent, so it takes no delivery tag: the broker's count and
                        # ours stay in step for the rest of the window.
                        answers[index] = Delivery(
                            message_id=message.message_id,
                            outcome="unpublishable",
                            reply_text=f"{type(exc).__name__}: {exc}",
                        )
                        continue
                    channel.delivery_tag += 1
                    tag = channel.delivery_tag
                    confirmation = channel.create_future()
                    channel.confirmations[tag] = confirmation
                    tags[message.message_id] = tag
                    tagged.append((message.message_id, tag))
                    pending[confirmation] = index
                await channel.write_queue.put(
                    ChannelFrame(payload=bytes(payload), should_close=False)
                )
            # In publish order; an ack with multiple=True settles a run of them at once, so
            # most are done when reached and only the first of each run is waited for.
            late = 0
            try:
                async with asyncio.timeout(self._confirm_timeout):
                    for confirmation in pending:
                        if not confirmation.done():
                            await asyncio.wait((confirmation,))
            except TimeoutError:
                late = sum(not confirmation.done() for confirmation in pending)
        finally:
            # The message-id map routes a basic.return to its publish; once the window is
            # settled (or abandoned) its entries are dropped, as aiormq's own publish does.
            for message_id, tag in tagged:
                if tags.get(message_id) == tag:
                    del tags[message_id]
        latency = time.perf_counter() - started
        # Every settled publish keeps its answer, even past one the connection's loss failed:
        # a later one may have been confirmed already, and calling it lost would republish it.
        lost: BaseException | None = None
        for confirmation, index in pending.items():
            if confirmation.done():
                message_id = messages[index - offset].message_id
                try:
                    answers[index] = self._answer(confirmation, message_id, latency)
                except BaseException as exc:
                    lost = lost or exc
        if lost is not None:
            raise lost
        if late:
            raise TimeoutError(f"{late} publishes unconfirmed after {self._confirm_timeout}s")

    @staticmethod
    def _answer(confirmation: asyncio.Future[object], message_id: str, latency: float) -> Delivery:
        error = confirmation.exception()
        if error is None:
            return Delivery(message_id=message_id, outcome="confirmed", latency=latency)
        if isinstance(error, aiormq.PublishError):
            frame = cast(spec.Basic.Return, error.frame)
            return Delivery(
                message_id=message_id,
                outcome="returned",
                reply_code=frame.reply_code or 0,
                reply_text=frame.reply_text or "",
                latency=latency,
            )
        if isinstance(error, aiormq.DeliveryError):
            return Delivery(message_id=message_id, outcome="nacked", latency=latency)
        raise error  # the channel or connection went away: the caller aborts the batch

    def _encode(self, message: Publishable, channel: int, frame_max: int) -> bytes:
        headers: dict[str, str | int] = {
            "partner_id": message.partner_id,
            "schema_version": message.schema_version,
            "idempotency_key": message.idempotency_key,
        }
        if message.causation_id is not None:
            headers["causation_id"] = message.causation_id
        # The envelope's W3C trace, as the header tracing consumers read (one `endswith` when
        # the message has none).
        if (traceparent := traceparent_of(message.body)) is not None:
            headers["traceparent"] = traceparent
        return encode_publish(
            channel=channel,
            exchange=self._exchange,
            routing_key=message.routing_key,
            body=message.body,
            message_id=message.message_id,
            correlation_id=message.correlation_id,
            message_type=message.document_type,
            # When the gateway accepted the message, the same on every republish.
            timestamp=int(message.created_at),
            app_id=self._app_id,
            headers=headers,
            frame_max=frame_max,
        )

    async def _abort(self, cause: BaseException) -> None:
        """Mark the publisher lost and close the connection, so the other lanes stop waiting."""
        if self._lost is not None:
            return
        self._lost = cause
        log.warning("broker connection to %s lost: %r", self._address, cause)
        with anyio.move_on_after(CLOSE_TIMEOUT, shield=True):
            await self._connection.close(cause)
