"""Drain the outbox to the broker; a row is marked published only once the broker confirms it.

The relay reads pending rows in seq order, hands them to a confirming publisher and settles
each row by the broker's answer: confirmed rows are marked published (one store call per
batch), returned (unroutable) rows are marked dead with the broker's reason, and so are rows
AMQP cannot carry (never sent), nacked rows stay pending and go again on the next pass. When
the connection is lost it backs off, reconnects (the connect callable redeclares the
topology) and resumes from the lowest pending seq, so the backlog drains in seq order, hence
in order per partner.

Delivery is at-least-once: a row confirmed but not yet marked when the process or the
connection dies is published again; consumers dedup on `message_id`. After a lost connection
the unanswered rows go again after whatever of them the broker had already taken, so first
appearances on a queue still follow seq. A nack is the exception: the refused row is
republished after the rows behind it that were confirmed (queues refuse only when full).

With a tracer, every publish is recorded as a `relay publish` span (a producer span, child of
the message's `traceparent`), from the batch's publish to the broker's answer, with its outcome.

The relay knows the broker only through its ports (`actors.ports.OutboxPublisher`, a
connect callable) and the store through `actors.ports.OutboxSource`: `gateway.relay` wires
in `protocols.amqp.connect`, and the gateway runs the relay in the store's writer process,
beside the connection that commits the rows (gateway/store/child.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import NoReturn

import anyio
import msgspec
from anyio.abc import TaskStatus

from actors.ports import (
    OutboxPublisher,
    OutboxRecord,
    OutboxSource,
    PartialBatch,
    PublishAnswer,
    PublishOutcome,
)
from canonical.backoff import backoff_delay
from canonical.errors import StoreUnavailable
from canonical.trace import log_context
from canonical.tracecontext import traceparent_of
from canonical.tracing import Tracer

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_IDLE_WAIT",
    "DEFAULT_RECONNECT_MAX",
    "DEFAULT_RECONNECT_MIN",
    "Delivery",
    "OutboxPublisher",
    "OutboxRelay",
    "OutboxSource",
    "RelayStatistics",
]

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 512
DEFAULT_RECONNECT_MIN = 0.2
DEFAULT_RECONNECT_MAX = 10.0
# The store's commit hook wakes the relay; this is only the safety net if a wake-up is missed.
DEFAULT_IDLE_WAIT = 1.0
# Closing a publisher whose broker is gone must not hold up a reconnect or a shutdown.
CLOSE_TIMEOUT = 5.0
# Unroutable routing keys the statistics name; past it, the oldest is forgotten.
MAX_UNROUTABLE_KEYS = 32

Outcome = PublishOutcome
Delivery = PublishAnswer  # the broker's answer to one publish (its older name here)


class RelayStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """The relay's counters since it was created; read by the metrics collector at scrape time."""

    published: int  # publishes handed to the broker, republishes included
    confirmed: int
    nacked: int
    returned: int  # unroutable, marked dead
    unpublishable: int  # AMQP cannot carry them (never sent), marked dead
    lost: int  # unanswered when the connection died; published again
    reconnects: int  # connections opened after the first
    in_flight: int  # rows handed to the publisher and not settled yet
    last_batch_size: int
    connected: bool
    # Routing keys whose latest publish came back unroutable (no queue bound for them), the
    # least recently returned first, at most `MAX_UNROUTABLE_KEYS`: each such message becomes
    # a dead letter. A key leaves once a publish with it is confirmed.
    unroutable: tuple[str, ...] = ()


class OutboxRelay:
    """Publishes the outbox through a confirming publisher, reconnecting when the broker is lost.

    `connect()` opens a publisher (and declares the topology); it raises `ConnectionError` (or
    `TimeoutError`) while the broker is unreachable. `on_confirm(latency)` is called for each
    confirmed publish with the seconds from publish to confirm (the metrics histogram).
    """

    def __init__(
        self,
        source: OutboxSource,
        connect: Callable[[], Awaitable[OutboxPublisher]],
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        reconnect_min: float = DEFAULT_RECONNECT_MIN,
        reconnect_max: float = DEFAULT_RECONNECT_MAX,
        idle_wait: float = DEFAULT_IDLE_WAIT,
        on_confirm: Callable[[float], None] | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size: expected at least 1")
        if not 0 < reconnect_min <= reconnect_max:
            raise ValueError("reconnect_min: expected 0 < reconnect_min <= reconnect_max")
        if idle_wait <= 0:
            raise ValueError("idle_wait: expected a positive number of seconds")
        self._source = source
        self._connect = connect
        self._batch_size = batch_size
        self._reconnect_min = reconnect_min
        self._reconnect_max = reconnect_max
        self._idle_wait = idle_wait
        self._on_confirm = on_confirm
        self._tracer = tracer
        self._wakeup = anyio.Event()
        # flush(): requests counted, and the count a pass over an empty outbox had seen.
        self._flush_requests = 0
        self._flushed_up_to = 0
        self._flush_done = anyio.Event()
        # Connection failures in a row; reset once a connection proves healthy.
        self._failures = 0
        self._connections = 0
        self._connected = False
        self._published = self._confirmed = self._nacked = self._returned = self._lost = 0
        self._unpublishable = 0
        # Routing key -> None, in the order they were found unroutable (an ordered set).
        self._unroutable: dict[str, None] = {}
        self._in_flight = 0
        self._last_batch_size = 0

    def wake(self) -> None:
        """Tell the relay that rows were committed (the store's commit hook); never blocks.

        Call it from the event loop's thread.
        """
        self._wakeup.set()

    async def flush(self) -> None:
        """Return once the outbox is empty, as seen by a read that began after this call.

        For an orderly shutdown, after intake has stopped: rows committed before the call are
        published and confirmed when it returns. Never returns while the broker is away, so
        bound it with a deadline (the rows stay safe in the store).
        """
        self._flush_requests += 1
        wanted = self._flush_requests
        while self._flushed_up_to < wanted:
            self._flush_done = anyio.Event()
            self.wake()
            await self._flush_done.wait()

    def statistics(self) -> RelayStatistics:
        return RelayStatistics(
            published=self._published,
            confirmed=self._confirmed,
            nacked=self._nacked,
            returned=self._returned,
            unpublishable=self._unpublishable,
            lost=self._lost,
            reconnects=max(0, self._connections - 1),
            in_flight=self._in_flight,
            last_batch_size=self._last_batch_size,
            connected=self._connected,
            unroutable=tuple(self._unroutable),
        )

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Relay until cancelled; report started at once, before the broker is reached.

        Rows wait safely in the store while the broker is away, so the gateway can accept
        messages before its first broker connection. A store that cannot write is waited out
        the same way. Other errors (a declare refused by the broker, a bug) propagate.
        """
        task_status.started()
        while True:
            try:
                publisher = await self._connect()
            except (ConnectionError, TimeoutError) as exc:
                await self._back_off("cannot connect to the broker", exc)
                continue
            self._connections += 1
            self._connected = True
            cause: Exception
            try:
                await self._drain(publisher)
            except ConnectionError as exc:
                cause, what = exc, "broker connection lost"  # `exc` is unbound after the handler
            except StoreUnavailable as exc:
                # Rows stay pending while the store cannot write (disk full): start over from
                # the state column once it can; a row confirmed but not marked goes out again.
                cause, what = exc, "store cannot record publishes"
            finally:
                self._connected = False
                with anyio.move_on_after(CLOSE_TIMEOUT, shield=True):
                    await publisher.close()
            await self._back_off(what, cause)

    async def _back_off(self, what: str, cause: BaseException) -> None:
        self._failures += 1
        delay = backoff_delay(
            self._failures, minimum=self._reconnect_min, maximum=self._reconnect_max
        )
        log.warning("%s (%r); retrying in %.2fs", what, cause, delay)
        await anyio.sleep(delay)

    async def _drain(self, publisher: OutboxPublisher) -> NoReturn:
        """Publish pending rows batch by batch until the connection is lost."""
        # An optimisation within one connection only: the state column is the truth, so the
        # cursor starts at 0 on every connection and after any nack.
        cursor = 0
        refusals = 0  # batches in a row with a nack
        while True:
            # A fresh event before each read: a wake-up during the read is kept for the wait.
            wakeup = self._wakeup = anyio.Event()
            flush = self._flush_requests  # flushes asked for before this read began
            rows = await self._source.pending(self._batch_size, after_seq=cursor)
            if not rows:
                self._failures = 0
                if cursor:
                    cursor = 0  # look once from the start before idling
                    continue
                self._flushed_up_to = flush
                self._flush_done.set()
                with anyio.move_on_after(self._idle_wait):
                    await wakeup.wait()
                continue
            if await self._publish(publisher, rows):
                # The broker refused some rows (a queue at its max length rejects publishes):
                # give it time before the next pass republishes them.
                cursor = 0
                refusals += 1
                await anyio.sleep(
                    backoff_delay(
                        refusals, minimum=self._reconnect_min, maximum=self._reconnect_max
                    )
                )
            else:
                cursor = rows[-1].seq
                refusals = 0
                self._failures = 0

    async def _publish(self, publisher: OutboxPublisher, rows: Sequence[OutboxRecord]) -> bool:
        """Publish one batch and settle it in the store; True if the broker nacked any row."""
        self._last_batch_size = self._in_flight = len(rows)
        self._published += len(rows)
        started_ns = 0 if self._tracer is None else time.time_ns()
        try:
            deliveries = await publisher.publish_batch(rows)
        except ConnectionError as exc:
            if isinstance(exc, PartialBatch):
                deliveries = exc.deliveries
                await self._settle(rows, deliveries)
            else:
                self._lost += len(rows)
                deliveries = ()
            if self._tracer is not None:
                self._trace(self._tracer, rows, deliveries, started_ns)
            raise
        finally:
            self._in_flight = 0
        if self._tracer is not None:
            self._trace(self._tracer, rows, deliveries, started_ns)
        return await self._settle(rows, deliveries)

    def _trace(
        self,
        tracer: Tracer,
        rows: Sequence[OutboxRecord],
        deliveries: Sequence[Delivery],
        started_ns: int,
    ) -> None:
        """Record a `relay publish` span per traced row; rows without an answer were lost."""
        ended_ns = time.time_ns()
        answers: list[Delivery | None] = [*deliveries]
        answers += [None] * (len(rows) - len(answers))
        for row, answer in zip(rows, answers, strict=True):
            parent = traceparent_of(row.body)
            if parent is None:
                continue
            outcome = "lost" if answer is None else answer.outcome
            tracer.record(
                "relay publish",
                parent,
                start_ns=started_ns,
                end_ns=ended_ns,
                kind="producer",
                attributes={
                    "messaging.system": "rabbitmq",
                    "messaging.operation.type": "publish",
                    "messaging.message.id": row.message_id,
                    "messaging.rabbitmq.destination.routing_key": row.routing_key,
                    "gateway.partner": row.partner_id,
                    "gateway.outcome": outcome,
                },
                error=None if outcome == "confirmed" else outcome,
            )

    async def _settle(self, rows: Sequence[OutboxRecord], deliveries: Sequence[Delivery]) -> bool:
        confirmed: list[int] = []
        dead: list[tuple[OutboxRecord, str]] = []
        nacked = False
        for row, delivery in zip(rows, deliveries, strict=True):
            if delivery.message_id != row.message_id:
                raise RuntimeError(
                    f"publisher answered {delivery.message_id} for row {row.seq} "
                    f"({row.message_id}): answers must follow the batch order"
                )
            match delivery.outcome:
                case "confirmed":
                    confirmed.append(row.seq)
                    if self._on_confirm is not None:
                        self._on_confirm(delivery.latency)
                    if self._unroutable:  # a queue was bound since: routable again
                        self._unroutable.pop(row.routing_key, None)
                case "returned":
                    self._returned += 1
                    self._unroutable.pop(row.routing_key, None)
                    self._unroutable[row.routing_key] = None
                    if len(self._unroutable) > MAX_UNROUTABLE_KEYS:
                        del self._unroutable[next(iter(self._unroutable))]
                    reason = (
                        f"unroutable: {delivery.reply_code} {delivery.reply_text} "
                        f"(routing key {row.routing_key!r})"
                    )
                    dead.append((row, reason))
                case "unpublishable":
                    self._unpublishable += 1
                    dead.append((row, f"cannot be published: {delivery.reply_text}"))
                case "nacked":
                    self._nacked += 1
                    nacked = True
                case "lost":
                    self._lost += 1
        self._confirmed += len(confirmed)
        if confirmed:
            await self._source.mark_published(confirmed)
        for row, reason in dead:
            with log_context(
                message_id=row.message_id,
                correlation_id=row.correlation_id,
                partner=row.partner_id,
            ):
                log.error("message dead-lettered by the relay: %s", reason)
            await self._source.mark_dead(row.seq, reason)
        return nacked
