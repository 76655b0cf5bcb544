"""The store: the one way the gateway reaches SQLite.

Writes go through one writer task that commits them in groups (`committer.GroupCommit`) in the
writer process; reads go to a second, read-only connection and never queue behind the writer.
Given a relay factory, the writer process also runs the outbox relay (gateway/store/child.py):
the store polls its report and asks it to flush at shutdown.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from functools import partial
from types import TracebackType
from typing import Any, Self, TypeVar, cast

import aiosqlite
import anyio

from canonical.errors import GatewayError, StoreUnavailable
from canonical.outbox import OutboxRecord
from gateway.store import queries, schema, wire, writer
from gateway.store.committer import GroupCommit
from gateway.store.dead_letters import DeadLetterBook
from gateway.store.deliveries import DeliveryLedger
from gateway.store.edi import EdiLedger
from gateway.store.files import FileLedger
from gateway.store.inventory import InventoryLedger
from gateway.store.operator_reads import OperatorReads
from gateway.store.orders import OrderLedger
from gateway.store.process import WriterProcess
from gateway.store.records import Acceptance, Accepted, BatchReport, DeadLetter, StoreStatistics
from gateway.store.retention import PurgeReport, Retention
from gateway.store.retention import purge as retention_purge
from gateway.store.workflow_state import WorkflowLedger

__all__ = [
    "DEFAULT_BUSY_TIMEOUT_S",
    "DEFAULT_JOURNAL_SIZE_LIMIT",
    "DEFAULT_MAX_BATCH",
    "DEFAULT_MAX_QUEUED",
    "DEFAULT_PURGE_CHUNK",
    "DEFAULT_PURGE_CHUNK_S",
    "DEFAULT_RETRY_AFTER_S",
    "Store",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

# Requests in one group commit: large enough that the fsync is shared by many, small enough
# that one transaction never holds the write lock for long.
DEFAULT_MAX_BATCH = 512
# Requests waiting for the writer; past it `accept()` waits for room (backpressure).
DEFAULT_MAX_QUEUED = 4096
# How long a statement waits for another process's write lock (the CLI) before failing.
DEFAULT_BUSY_TIMEOUT_S = 5.0
# What a 503 after a failed commit tells the partner to wait.
DEFAULT_RETRY_AFTER_S = 5.0
# A purge's chunk (one transaction): the most rows it deletes, and the time its statements aim
# to hold the writer (`retention.purge` sizes each chunk in bytes by the time the last took).
DEFAULT_PURGE_CHUNK = 10_000
DEFAULT_PURGE_CHUNK_S = 0.01
# Bytes the WAL is truncated back to after a checkpoint.
DEFAULT_JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
# The store's retention unless it is given one: nothing is purged.
KEEP_EVERYTHING = Retention()
# How often the relay's report is fetched from the writer process (metrics, readiness).
RELAY_POLL_INTERVAL_S = 0.5


_NOT_OPENED = StoreStatistics(
    batches_committed=0,
    commit_failures=0,
    requests_committed=0,
    rows_committed=0,
    last_batch_size=0,
    average_batch_size=0.0,
    queued=0,
    in_flight=0,
)


async def in_thread(db: aiosqlite.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """Run `fn(connection)` in the aiosqlite connection's own thread, as one hop.

    aiosqlite has no public call for this; `_execute` is what its own public methods go
    through (unchanged from 0.17 to 0.22). The read connection's set-up uses it.
    """
    result = await db._execute(fn, db._conn)  # type: ignore[no-untyped-call]
    return cast(T, result)


async def _close(db: aiosqlite.Connection) -> None:
    # Even when the owner is cancelled: an unclosed connection's thread would outlive the loop.
    await _shielded(db.close)


async def _shielded(close: Callable[[], Awaitable[None]]) -> None:
    with anyio.CancelScope(shield=True):
        await close()


class Store:
    """Inbox, outbox, dead letters and actor state in one SQLite file, used as `async with`.

    `synchronous="FULL"` survives power loss; "NORMAL" may lose the last commits on power loss
    (never on a process crash). With `purge_interval_s`, the store deletes what `retention`
    lets go of in the background, once at start and then every interval (see `purge`). With
    `relay` (`gateway.relay.build_relay` bound to its settings), the writer process publishes
    the outbox: see `relay_report` and `flush_relay`. With `tracer` (a factory, called in the
    writer process) it records a span per committed acceptance and per relayed message.

    The store's task group encloses the `async with` body: if the writer task dies of a bug,
    the body is cancelled and the error surfaces when the block exits.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: schema.Synchronous = "FULL",
        max_batch: int = DEFAULT_MAX_BATCH,
        max_queued: int = DEFAULT_MAX_QUEUED,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
        retry_after_s: float = DEFAULT_RETRY_AFTER_S,
        retention: Retention = KEEP_EVERYTHING,
        purge_interval_s: float | None = None,
        purge_chunk: int = DEFAULT_PURGE_CHUNK,
        purge_chunk_s: float = DEFAULT_PURGE_CHUNK_S,
        journal_size_limit: int = DEFAULT_JOURNAL_SIZE_LIMIT,
        on_batch: Callable[[BatchReport], None] | None = None,
        relay: wire.RelayFactory | None = None,
        configure_logging: Callable[[], None] | None = None,
        tracer: wire.TracerFactory | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be FULL or NORMAL, not {synchronous!r}")
        if min(max_batch, max_queued, purge_chunk) < 1:
            raise ValueError("max_batch, max_queued and purge_chunk must be at least 1")
        if purge_chunk_s <= 0:
            raise ValueError("purge_chunk_s must be positive")
        self._path = os.fspath(path)
        self._synchronous: schema.Synchronous = synchronous
        self._max_batch = max_batch
        self._max_queued = max_queued
        self._busy_timeout_ms = int(busy_timeout_s * 1000)
        self._retry_after_s = retry_after_s
        self._retention = retention
        self._purge_interval_s = purge_interval_s
        self._purge_chunk = purge_chunk
        self._purge_chunk_s = purge_chunk_s
        self._journal_size_limit = journal_size_limit
        self._on_batch = on_batch
        self._relay = relay
        self._configure_logging = configure_logging
        self._tracer = tracer
        self._relay_report: Any = None
        self._relay_reachable = False
        self._clock = clock

        self._exit_stack: AsyncExitStack | None = None
        self._committer: GroupCommit | None = None
        self._reader_db: aiosqlite.Connection | None = None
        self._writer_process: WriterProcess | None = None
        # Outbound deliveries: due heads, attempts, replay, endpoints (gateway/store/deliveries).
        self.deliveries = DeliveryLedger(self._write, self._read)
        # Purchase-order threads: state, journal, timers (gateway/store/workflow_state.py).
        self.workflow = WorkflowLedger(self._write, self._read)
        # Every source's dead letters for the operator: list, count, put back (store/dead_letters).
        self.dead_letter_book = DeadLetterBook(self._write, self._read)
        # Received files: fingerprints, staged rows, moves pending (gateway/store/files.py).
        self.files = FileLedger(self._write, self._read)
        # X12: replay checks, sequences, files to send, sets sent (gateway/store/edi.py).
        self.edi = EdiLedger(self._write, self._read)
        # Inventory positions and the availability read model (gateway/store/inventory.py).
        self.inventory = InventoryLedger(self._write, self._read)
        # Customer orders' status read model (gateway/store/orders.py).
        self.orders = OrderLedger(self._write, self._read)
        # The console's reads: reads like the ledgers' own, on the same connection.
        self.operator_reads = OperatorReads(self._read)

    # Lifetime

    async def __aenter__(self) -> Self:
        self._purge_scope = anyio.CancelScope()
        self._poll_stop = anyio.Event()
        async with AsyncExitStack() as stack:
            writer_process = WriterProcess(
                self._path,
                synchronous=self._synchronous,
                busy_timeout_ms=self._busy_timeout_ms,
                journal_size_limit=self._journal_size_limit,
                relay=self._relay,
                configure_logging=self._configure_logging,
                tracer=self._tracer,
            )
            await writer_process.start()
            stack.push_async_callback(_shielded, writer_process.close)
            self._writer_process = writer_process
            reader = await aiosqlite.connect(self._path, isolation_level=None)
            stack.push_async_callback(_close, reader)
            await in_thread(
                reader, partial(schema.prepare_reader, busy_timeout_ms=self._busy_timeout_ms)
            )
            self._reader_db = reader
            committer = GroupCommit(
                writer_process.commit,
                max_batch=self._max_batch,
                max_queued=self._max_queued,
                retry_after_s=self._retry_after_s,
                clock=self._clock,
                on_batch=self._on_batch,
            )
            task_group = await stack.enter_async_context(anyio.create_task_group())
            # Runs before the task group's exit waits for the writer: stop taking requests.
            stack.callback(self._stop_intake)
            self._committer = committer
            task_group.start_soon(committer.run, name="store-writer")
            if self._purge_interval_s is not None and not self._retention.keeps_everything():
                task_group.start_soon(self._purge_loop, self._purge_interval_s, name="store-purge")
            if self._relay is not None:
                task_group.start_soon(self._poll_relay, writer_process, name="store-relay-poll")
            self._exit_stack = stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        """Finish the batch being committed, fail queued requests, close the connections."""
        stack, self._exit_stack = self._exit_stack, None
        if stack is None:
            return None
        try:
            return await stack.__aexit__(exc_type, exc, tb)
        finally:
            self._reader_db = None

    def _stop_intake(self) -> None:
        self._purge_scope.cancel()
        self._poll_stop.set()
        if self._committer is not None:
            self._committer.stop_intake()

    # Acceptance (group commit)

    async def accept(self, acceptance: Acceptance) -> Accepted:
        """Keep an acceptance (idempotency record + outbox rows); answer after the commit.

        Raises `IdempotencyKeyReused` (same key, another body: nothing stored),
        `IdempotencyConflict` (same key still in flight), `StoreUnavailable` (the commit
        failed or the store is closing: retry later; nothing stored, unless the writer process
        died holding the batch, and then the retry is answered from the inbox), or
        `GatewayError` when SQLite refused this request's own rows (a duplicated message id: a
        bug upstream).
        """
        return await self._writer().accept(acceptance)

    async def _write(self, operation: Callable[[sqlite3.Connection, float], T]) -> T:
        return await self._writer().write(operation)

    def _writer(self) -> GroupCommit:
        if self._committer is None:
            raise self._unavailable("the store is closed")
        return self._committer

    def _unavailable(self, detail: str) -> StoreUnavailable:
        return StoreUnavailable(detail, retry_after=self._retry_after_s)

    # The outbox as a relay's source. The gateway's relay runs in the writer process and
    # calls the same `writer` functions there (gateway/store/child.py); these serve tools,
    # tests and a relay run outside it.

    async def pending(self, limit: int, after_seq: int = 0) -> list[OutboxRecord]:
        """Return up to `limit` pending outbox rows with seq > `after_seq`, in seq order."""
        return await self._read(partial(queries.pending, limit=limit, after_seq=after_seq))

    async def mark_published(self, seqs: Sequence[int]) -> None:
        """Mark outbox rows published once the broker confirmed them."""
        if seqs:
            await self._write(partial(writer.mark_published, tuple(seqs)))

    async def mark_dead(self, seq: int, reason: str) -> None:
        """Give up on a pending outbox row: state 'dead' plus a dead letter with the reason."""
        await self._write(partial(writer.mark_dead, seq, reason))

    def relay_report(self) -> Any:
        """The writer process's relay's report as last polled (at most `RELAY_POLL_INTERVAL_S`
        old): what its `HostedRelay.report` returned, unread by the store.

        None before the first report or without a relay. A report outlives the writer process
        that made it (see `relay_reachable`); its counters start again from zero with each new
        writer process (Prometheus reads that as a counter reset).
        """
        return self._relay_report

    @property
    def relay_reachable(self) -> bool:
        """Whether the last poll of the relay's report reached the writer process."""
        return self._relay_reachable

    async def flush_relay(self, within_s: float) -> bool:
        """Let the relay publish what is pending, within `within_s` seconds; for shutdown.

        True once the outbox was seen empty. False at once without a broker connection
        (the rows stay in the store for the next start), or when the time ran out.
        """
        if self._writer_process is None or self._relay is None:
            return False
        try:
            return await self._writer_process.flush_relay(within_s)
        except sqlite3.Error as exc:
            log.warning("the relay could not flush the outbox: %s", exc)
            return False

    async def outbox_backlog(self) -> tuple[int, float | None]:
        """Return (pending outbox rows, age in seconds of the oldest, or None when empty)."""
        count, oldest = await self._read(queries.outbox_backlog)
        return count, None if oldest is None else max(0.0, self._clock() - oldest)

    # Dead letters, retention, actor state

    async def dead_letter(
        self,
        *,
        source: str,
        reason: str,
        detail: str,
        payload: bytes,
        partner_id: str | None = None,
        message_id: str | None = None,
    ) -> int:
        """Keep a message the gateway gave up on; return the dead letter's id."""
        return await self._write(
            partial(writer.dead_letter, source, reason, detail, payload, partner_id, message_id)
        )

    async def dead_letters(
        self,
        *,
        source: str | None = None,
        partner_id: str | None = None,
        message_id: str | None = None,
        after_id: int = 0,
        limit: int = 100,
    ) -> list[DeadLetter]:
        """List dead letters in id order, filtered by every argument given."""
        return await self._read(
            partial(
                queries.dead_letters,
                source=source,
                partner_id=partner_id,
                message_id=message_id,
                after_id=after_id,
                limit=limit,
            )
        )

    @property
    def retention(self) -> Retention:
        """What the next purge pass lets go of."""
        return self._retention

    def retain(self, retention: Retention) -> None:
        """Purge by `retention` from the next pass on (a reload: the partners' X12 replay
        windows). Whether a purge loop runs at all was settled at start."""
        self._retention = retention

    async def purge(self) -> PurgeReport:
        """Delete every row the store's `retention` lets go of now; report what went.

        In chunks, one transaction each, so acceptances keep flowing (`retention.purge`).
        """
        return await retention_purge(
            self._write,
            self._retention,
            self._clock(),
            max_rows=self._purge_chunk,
            chunk_s=self._purge_chunk_s,
        )

    async def load_state(self, key: str) -> bytes | None:
        """Return an actor's persisted state, or None."""
        return await self._read(partial(queries.load_state, key=key))

    async def save_state(self, key: str, state: bytes) -> None:
        """Persist an actor's state (replacing what was there)."""
        await self._write(partial(writer.save_state, key, state))

    @property
    def writer_pid(self) -> int | None:
        """The process id of the writer process (gateway/store/process.py) while one runs."""
        return None if self._writer_process is None else self._writer_process.pid

    def statistics(self) -> StoreStatistics:
        """Return the writer's counters since the store opened (zeros before it has)."""
        return self._committer.statistics() if self._committer else _NOT_OPENED

    async def _read(self, query: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        if self._reader_db is None:
            raise self._unavailable("the store is closed")
        try:
            return await query(self._reader_db)
        except sqlite3.Error as exc:
            raise self._unavailable(f"the store could not be read: {exc}") from exc

    async def _poll_relay(self, writer_process: WriterProcess) -> None:
        # Stopped between two exchanges, never in one: a cancelled exchange kills the child.
        while not self._poll_stop.is_set():
            try:
                self._relay_report = await writer_process.relay_report()
                self._relay_reachable = True
            except sqlite3.Error:  # WriterLost: the commit path says why, and restarts it
                self._relay_reachable = False
            with anyio.move_on_after(RELAY_POLL_INTERVAL_S):
                await self._poll_stop.wait()

    async def _purge_loop(self, interval_s: float) -> None:
        with self._purge_scope:
            while True:
                try:
                    report = await self.purge()
                except GatewayError as exc:  # StoreUnavailable, or a chunk SQLite refused
                    log.warning("purge failed, next try in %.0f s: %s", interval_s, exc)
                else:
                    if report.removed:
                        log.info(
                            "purged rows past retention",
                            extra={
                                "fields": {
                                    "removed": report.removed,
                                    "chunks": report.chunks,
                                    "longest_chunk_ms": round(report.longest_chunk_s * 1000, 1),
                                }
                            },
                        )
                await anyio.sleep(interval_s)
