"""Group commit: the one writer task, and the queue of requests it commits together.

SQLite has one writer at a time, so the store has one: a task that takes every request queued
since its last commit (up to `max_batch`) and runs them as ONE transaction: one request to the
writer process (`writer.commit_batch`, run by `gateway/store/process.py`). Under load the queue
grows while a commit is in progress, so batches grow with it and the fsync per commit is
shared; there is no timer to wait for.

The promise kept here: a caller gets a result only after its rows are committed; when a commit
fails, every caller of that batch gets `StoreUnavailable` and nothing of the batch is kept. One
exception: if the writer process dies holding a batch (`process.WriterLost`), the batch may have
committed. Its callers get `StoreUnavailable` all the same; a retried acceptance is then
answered from the inbox, while another write of that batch may already have been applied.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar, cast

import anyio

from canonical.errors import GatewayError, IdempotencyConflict, StoreUnavailable
from gateway.store import writer
from gateway.store.records import Acceptance, Accepted, BatchReport, StoreStatistics

__all__ = ["Commit", "GroupCommit"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Runs one group commit (`writer.commit_batch`) on the writer connection, wherever it lives.
Commit = Callable[
    [Sequence[Acceptance], Sequence[writer.Operation], float],
    Awaitable[tuple[list[writer.AcceptOutcome], list[Any]]],
]


class _Job:
    """One request waiting for the writer; resolved once its batch commits or fails."""

    __slots__ = ("_done",)

    def __init__(self) -> None:
        # A bare future: anyio's Event looks up the backend per instance (measured: 10% of
        # ingest), asyncio's Event adds a waiter list and a loop check on every wait. It
        # carries (value, error) as its result, so an error whose caller was cancelled in the
        # meantime is not logged as "never retrieved".
        self._done: asyncio.Future[tuple[Any, BaseException | None]] = (
            asyncio.get_running_loop().create_future()
        )

    def resolve(self, value: Any) -> None:
        if not self._done.done():
            self._done.set_result((value, None))

    def fail(self, error: BaseException) -> None:
        if not self._done.done():
            self._done.set_result((None, error))

    async def outcome(self) -> Any:
        # A caller cancelled here cancels the future; the writer's resolve/fail then skip it.
        value, error = await self._done
        if error is not None:
            raise error
        return value


class _Accept(_Job):
    __slots__ = ("acceptance",)

    def __init__(self, acceptance: Acceptance) -> None:
        super().__init__()
        self.acceptance = acceptance


def _keys(acceptance: Acceptance) -> list[tuple[str, str]]:
    """The idempotency keys an acceptance holds while it is queued: each is in flight."""
    return [(acceptance.partner_id, key) for key in acceptance.idempotency_keys()]


class _Write(_Job):
    __slots__ = ("operation",)

    def __init__(self, operation: writer.Operation) -> None:
        super().__init__()
        self.operation = operation


class GroupCommit:
    """The writer: queues acceptances and other writes, commits them in groups.

    Run `run()` in a task group; `stop_intake()` makes it finish the batch in progress, fail
    whatever is still queued with `StoreUnavailable`, and return.
    """

    def __init__(
        self,
        commit: Commit,
        *,
        max_batch: int,
        max_queued: int,
        retry_after_s: float,
        clock: Callable[[], float],
        on_batch: Callable[[BatchReport], None] | None,
    ) -> None:
        self._run_batch = commit
        self._max_batch = max_batch
        self._retry_after_s = retry_after_s
        self._clock = clock
        self._on_batch = on_batch
        self._queue: deque[_Job] = deque()
        # Bounds the queue: a full queue makes `accept()` wait, which is the backpressure.
        # asyncio's Semaphore: anyio's looks up the backend on every acquire (hot path).
        self._room = asyncio.Semaphore(max_queued)
        self._work = anyio.Event()
        self._in_flight: set[tuple[str, str]] = set()
        self._closing = False

        self._batches = 0
        self._failures = 0
        self._requests = 0
        self._rows = 0
        self._last_batch = 0

    def statistics(self) -> StoreStatistics:
        """Return the counters since the writer started."""
        return StoreStatistics(
            batches_committed=self._batches,
            commit_failures=self._failures,
            requests_committed=self._requests,
            rows_committed=self._rows,
            last_batch_size=self._last_batch,
            average_batch_size=self._requests / self._batches if self._batches else 0.0,
            queued=len(self._queue),
            in_flight=len(self._in_flight),
        )

    async def accept(self, acceptance: Acceptance) -> Accepted:
        """Queue an acceptance and return its answer once its batch has committed."""
        keys = _keys(acceptance)
        busy = next((key for key in keys if key in self._in_flight), None)
        if busy is not None:
            raise IdempotencyConflict(f"a request with idempotency key {busy[1]!r} is in flight")
        job = _Accept(acceptance)
        self._in_flight.update(keys)
        try:
            await self._submit(job)
        except BaseException:
            self._in_flight.difference_update(keys)
            raise
        return cast(Accepted, await job.outcome())

    async def write(self, operation: Callable[[sqlite3.Connection, float], T]) -> T:
        """Queue a write to share the next group commit; return its result once committed."""
        job = _Write(operation)
        await self._submit(job)
        return cast(T, await job.outcome())

    def stop_intake(self) -> None:
        """Refuse new requests; the writer finishes its batch and fails the queued ones."""
        self._closing = True
        self._work.set()

    async def run(self) -> None:
        """Commit queued requests in groups until `stop_intake()` (or cancellation)."""
        try:
            while True:
                if not self._queue:
                    if self._closing:
                        return
                    await self._work.wait()
                    self._work = anyio.Event()
                    continue
                size = min(self._max_batch, len(self._queue))
                batch = [self._queue.popleft() for _ in range(size)]
                for _ in batch:
                    self._room.release()
                await self._commit(batch)
                if self._closing:
                    return
        finally:
            self._closing = True
            while self._queue:
                self._finish(self._queue.popleft(), error=self._unavailable("the store closed"))
                self._room.release()

    async def _submit(self, job: _Job) -> None:
        if self._closing:
            raise self._unavailable("the store is closed")
        await self._room.acquire()
        if self._closing:
            # Pass the slot on, so every request still waiting for room hears it too.
            self._room.release()
            raise self._unavailable("the store is closed")
        # No await from here to the writer taking the job: it cannot be lost in between.
        self._queue.append(job)
        self._work.set()

    async def _commit(self, batch: list[_Job]) -> None:
        accepts = [job for job in batch if isinstance(job, _Accept)]
        writes = [job for job in batch if isinstance(job, _Write)]
        started = time.perf_counter()
        try:
            # Once the transaction is under way its outcome must reach every caller.
            with anyio.CancelScope(shield=True):
                answers, results = await self._run_batch(
                    [job.acceptance for job in accepts],
                    [job.operation for job in writes],
                    self._clock(),
                )
        except sqlite3.Error as exc:
            self._failures += 1
            log.error("group commit of %d requests failed: %s", len(batch), exc)
            for job in batch:
                self._finish(job, error=self._unavailable(f"the store could not commit: {exc}"))
            self._report(accepts, writes, 0, committed=False, started=started)
            return
        except BaseException:
            for job in batch:
                self._finish(job, error=self._unavailable("the store's writer stopped"))
            raise
        rows = sum(len(answer.seqs) for answer in answers if isinstance(answer, Accepted))
        deliveries = sum(
            len(job.acceptance.deliveries)
            for job, answer in zip(accepts, answers, strict=True)
            if isinstance(answer, Accepted) and not answer.replayed
        )
        self._batches += 1
        self._requests += len(batch)
        self._rows += rows
        self._last_batch = len(batch)
        for accept_job, answer in zip(accepts, answers, strict=True):
            if isinstance(answer, Accepted):
                self._finish(accept_job, value=answer)
            else:
                self._finish(accept_job, error=answer)
        for write_job, result in zip(writes, results, strict=True):
            if isinstance(result, writer.OperationFailed):
                error = GatewayError(f"the store refused the write: {result.error}")
                error.__cause__ = result.error
                self._finish(write_job, error=error)
            else:
                self._finish(write_job, value=result)
        self._report(accepts, writes, rows, committed=True, started=started, deliveries=deliveries)

    def _finish(self, job: _Job, *, value: Any = None, error: BaseException | None = None) -> None:
        if isinstance(job, _Accept):
            self._in_flight.difference_update(_keys(job.acceptance))
        if error is not None:
            job.fail(error)
        else:
            job.resolve(value)

    def _report(
        self,
        accepts: list[_Accept],
        writes: list[_Write],
        rows: int,
        *,
        committed: bool,
        started: float,
        deliveries: int = 0,
    ) -> None:
        if self._on_batch is not None:
            self._on_batch(
                BatchReport(
                    acceptances=len(accepts),
                    operations=len(writes),
                    rows=rows,
                    committed=committed,
                    seconds=time.perf_counter() - started,
                    deliveries=deliveries,
                )
            )

    def _unavailable(self, detail: str) -> StoreUnavailable:
        return StoreUnavailable(detail, retry_after=self._retry_after_s)
