"""The store's writer process: the only write connection, and the outbox relay beside it.

Started by `WriterProcess` (gateway/store/process.py, which says why it is a process). One
event loop runs three things:

- the parent's requests, read one at a time from stdin, each run to completion: a group commit
  is one plain function call (`writer.commit_batch`), so nothing interleaves with it;
- the outbox relay (`wire.HostedRelay`, built by the factory the gateway handed the store:
  `gateway.relay`), woken by every commit, reading pending rows on this connection (`_Outbox`)
  and publishing them on its own core;
- the relay's own writes (rows marked published or dead), which ride in the next commit the
  parent asks for (`_RelayWrites` says when they commit alone).

With a tracer (`wire.Setup.tracer`, built here from the gateway's settings) each committed
acceptance is recorded as an `outbox commit` span, a child of its message's `traceparent`, and
the relay records its publishes with the same tracer.

The relay keeps itself going (restarts after errors are its own business); the store imports
nothing of it, nor of the gateway that built it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import sqlite3
import time
from collections.abc import Sequence
from functools import partial
from typing import Any, BinaryIO

import anyio
import msgspec

from canonical.errors import ConfigError, GatewayError, StoreUnavailable
from canonical.outbox import OutboxRecord
from canonical.tracecontext import traceparent_of
from canonical.tracing import Tracer
from gateway.store import queries, schema, wire, writer
from gateway.store.records import Acceptance

__all__ = ["serve"]

log = logging.getLogger("gateway.relay")

_decode_acceptance = msgspec.msgpack.Decoder(Acceptance).decode
# Largest frame the child reads: a batch of 512 acceptances of 1 MB bodies, with room to spare.
_MAX_FRAME = 1 << 31
# How long the relay's marks wait for a commit of the parent's before committing alone.
_MARK_DELAY_S = 0.05


def serve(argv: Sequence[str], answer_fd: int) -> int:
    """The child's main: `serve([path, synchronous, busy_timeout_ms, size_limit, schema], fd)`.

    `schema` is the parent's schema version. A child started from other code than its parent
    (the gateway was upgraded in place, then its writer restarted) refuses to start rather
    than migrate the store under a parent that does not know the new schema.
    """
    answers = os.fdopen(answer_fd, "wb", buffering=0)
    try:
        return anyio.run(
            _serve, argv, answers, backend="asyncio", backend_options={"use_uvloop": True}
        )
    except BrokenPipeError:
        return 0  # the parent is gone: nobody is left to answer, and stdin is closing too


async def _serve(argv: Sequence[str], answers: BinaryIO) -> int:
    path, sync, busy_timeout_ms, size_limit, parent_schema = argv
    requests = await _open_requests()
    head = await _read_frame(requests)
    if head is None:
        return 0
    setup: wire.Setup = pickle.loads(head)
    if setup.configure_logging is not None:
        setup.configure_logging()
    else:
        logging.basicConfig(level=setup.log_level)
    if int(parent_schema) != schema.SCHEMA_VERSION:
        refusal = ConfigError(
            f"the store writer's code has schema {schema.SCHEMA_VERSION}, the gateway's "
            f"{parent_schema}: the gateway was upgraded while running; restart it"
        )
        answers.write(wire.pack_answer(False, refusal))
        return 1
    conn = sqlite3.connect(
        path, isolation_level=None, cached_statements=writer.STATEMENT_CACHE_SIZE
    )
    relay_writes = _RelayWrites(conn)
    tracer: Tracer | None = None
    try:
        try:
            tracer = None if setup.tracer is None else setup.tracer()
            schema.prepare_writer(
                conn,
                synchronous="FULL" if sync == "FULL" else "NORMAL",
                busy_timeout_ms=int(busy_timeout_ms),
                journal_size_limit=int(size_limit),
            )
            relay = None
            if setup.relay is not None:
                relay = setup.relay(_Outbox(conn, relay_writes), tracer)
        except Exception as exc:
            answers.write(wire.pack_answer(False, exc))
            return 1
        answers.write(wire.pack_answer(True, None))
        async with anyio.create_task_group() as tg:
            if relay is not None:
                tg.start_soon(relay.run)
                tg.start_soon(relay_writes.commit_when_due)
            await _answer(requests, answers, conn, relay_writes, relay, tracer)
            tg.cancel_scope.cancel()
    finally:
        relay_writes.commit_alone()
        conn.close()
        if tracer is not None:
            tracer.close()
    return 0


async def _answer(
    requests: asyncio.StreamReader,
    answers: BinaryIO,
    conn: sqlite3.Connection,
    relay_writes: _RelayWrites,
    relay: wire.HostedRelay | None,
    tracer: Tracer | None,
) -> None:
    """Answer the parent's requests in order until its end of the pipe closes."""
    while (payload := await _read_frame(requests)) is not None:
        try:
            answers.write(wire.TAKEN)
            answer = await _run(payload, conn, relay_writes, relay, tracer)
            answers.write(answer)
        except BrokenPipeError:
            return  # the parent is gone: nobody is left to answer, and stdin is closing too


async def _run(
    payload: bytearray,
    conn: sqlite3.Connection,
    relay_writes: _RelayWrites,
    relay: wire.HostedRelay | None,
    tracer: Tracer | None,
) -> bytes:
    """Run one request; return its framed answer."""
    value: Any = None
    try:
        match wire.decode_request(payload):
            case wire.Commit() as commit:
                value = _commit(conn, commit, relay_writes, tracer)
                if relay is not None:
                    relay.wake()
            case wire.Status():
                value = None if relay is None else relay.report()
            case wire.Flush(within_s=within_s):
                value = "flushed" if relay is None else await relay.flush(within_s)
    except Exception as exc:
        return wire.pack_answer(False, exc)
    return wire.pack_answer(True, value)


def _commit(
    conn: sqlite3.Connection,
    request: wire.Commit,
    relay_writes: _RelayWrites,
    tracer: Tracer | None = None,
) -> tuple[list[Any], list[Any]]:
    """Run one commit with the relay's queued writes; a part that does not decode fails alone."""
    answers: list[Any] = []
    acceptances: list[Acceptance] = []
    for raw in request.acceptances:
        try:
            acceptances.append(_decode_acceptance(raw))
        except Exception as exc:  # ValidationError, OverflowError: this request's alone
            answers.append(GatewayError(f"the store cannot keep the request's rows: {exc}"))
        else:
            answers.append(None)
    results: list[Any] = []
    operations: list[writer.Operation] = []
    for raw_operation in request.operations:
        try:
            operations.append(pickle.loads(raw_operation))
        except Exception as exc:
            results.append(writer.OperationFailed(exc))
        else:
            results.append(None)
    riders = relay_writes.take()
    started_ns = 0 if tracer is None else time.time_ns()
    try:
        done_answers, done_results = writer.commit_batch(
            conn, acceptances, [*operations, *riders], request.now
        )
    except Exception as exc:
        relay_writes.put_back(riders)
        if tracer is not None:
            _trace_commits(tracer, acceptances, [exc] * len(acceptances), started_ns)
        raise
    if tracer is not None:
        _trace_commits(tracer, acceptances, done_answers, started_ns)
    relay_writes.note(done_results[len(operations) :])
    fill = iter(done_answers)
    answers = [next(fill) if a is None else a for a in answers]
    fill = iter(done_results)
    results = [next(fill) if r is None else r for r in results]
    return answers, results


def _trace_commits(
    tracer: Tracer, acceptances: Sequence[Acceptance], outcomes: Sequence[Any], started_ns: int
) -> None:
    """Record one `outbox commit` span per acceptance of the batch, from its trace.

    One span per acceptance, not one per batch: a batch holds many messages of many traces,
    and a span has one parent, so a batch span would sit in one trace (or none) and every
    other message's trace would miss its commit. Spans of one batch share its start and end
    (the transaction is one), and say how large it was. An acceptance whose messages carry
    no `traceparent` (tracing off where it began) records nothing.
    """
    ended_ns = time.time_ns()
    size = len(acceptances)
    for acceptance, outcome in zip(acceptances, outcomes, strict=True):
        bodies = [row.body for row in acceptance.records]
        bodies += [delivery.body for delivery in acceptance.deliveries]
        parent = next(filter(None, map(traceparent_of, bodies)), None)
        if parent is None:
            continue
        replayed = getattr(outcome, "replayed", False)
        tracer.record(
            "outbox commit",
            parent,
            start_ns=started_ns,
            end_ns=ended_ns,
            attributes={
                "db.system": "sqlite",
                "gateway.partner": acceptance.partner_id,
                "gateway.idempotency_key": acceptance.idempotency_key,
                "gateway.rows": 0 if replayed else len(acceptance.records),
                "gateway.deliveries": 0 if replayed else len(acceptance.deliveries),
                "gateway.replayed": replayed,
                "gateway.batch_size": size,
            },
            error=repr(outcome) if isinstance(outcome, Exception) else None,
        )


class _RelayWrites:
    """The relay's writes (rows marked published or dead), queued; the relay never waits.

    They ride in the parent's next commit, so a confirm costs no fsync of its own. The relay
    reads on past its cursor meanwhile, and queued marks concern only rows at or below it.
    They commit alone before a read from the start of the outbox (the rows they mark must not
    be read as pending again), once the oldest has waited `_MARK_DELAY_S` (no ingest: the relay
    drains a backlog, or waits on the broker), and when the process stops. A commit that fails
    puts them back for the next (both only touch rows still pending: running one twice is
    harmless). When one of their own fails and no later commit gets them in first, the
    relay's next call raises `StoreUnavailable`: it backs off, and reads from the start once
    the marks are in, so a row is published again only if its mark never gets in (the
    process stopped first).
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._queued: list[writer.Operation] = []
        self._since = 0.0
        self._failure: Exception | None = None

    def queue(self, operation: writer.Operation) -> None:
        """Queue a write, then raise a failure of the last commit of them, if any."""
        if not self._queued:
            self._since = time.monotonic()
        self._queued.append(operation)
        self.raise_failure()

    def take(self) -> list[writer.Operation]:
        taken, self._queued = self._queued, []
        return taken

    def put_back(self, taken: list[writer.Operation]) -> None:
        """Return writes a failed commit carried, ahead of those queued since."""
        if taken:
            self._queued[:0] = taken
            self._since = time.monotonic()

    def commit_alone(self) -> None:
        if not (taken := self.take()):
            return
        try:
            _, results = writer.commit_batch(self._conn, [], taken, time.time())
        except Exception as exc:
            log.warning("relay marks not committed, kept for the next commit: %s", exc)
            self.put_back(taken)
            self._failure = exc
        else:
            self.note(results)

    async def commit_when_due(self) -> None:
        while True:
            await anyio.sleep(_MARK_DELAY_S)
            if self._queued and time.monotonic() - self._since >= _MARK_DELAY_S:
                self.commit_alone()

    def note(self, results: Sequence[Any]) -> None:
        """Take note of the writes a commit got in: a failure before them is over."""
        if results:
            self._failure = None
        for result in results:
            if isinstance(result, writer.OperationFailed):
                log.error("the store refused a relay write: %s", result.error)

    def raise_failure(self) -> None:
        if (failure := self._failure) is not None:
            self._failure = None
            raise StoreUnavailable(f"the store could not record publishes: {failure}")


class _Outbox:
    """The relay's `OutboxSource`: reads on the write connection, writes through `_RelayWrites`."""

    def __init__(self, conn: sqlite3.Connection, writes: _RelayWrites) -> None:
        self._conn = conn
        self._writes = writes

    async def pending(self, limit: int, after_seq: int = 0) -> list[OutboxRecord]:
        if not after_seq:
            self._writes.commit_alone()
        self._writes.raise_failure()
        try:
            return queries.pending_now(self._conn, limit, after_seq)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"the outbox could not be read: {exc}") from exc

    async def mark_published(self, seqs: Sequence[int]) -> None:
        if seqs:
            self._writes.queue(partial(writer.mark_published, tuple(seqs)))

    async def mark_dead(self, seq: int, reason: str) -> None:
        self._writes.queue(partial(writer.mark_dead, seq, reason))


async def _open_requests() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_MAX_FRAME)
    stdin = os.fdopen(os.dup(0), "rb", buffering=0)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), stdin)
    return reader


async def _read_frame(requests: asyncio.StreamReader) -> bytearray | None:
    """The next frame, or None once the parent's end is closed (also mid-frame: it died).

    Read piece by piece into a buffer of the frame's size: `readexactly` would gather the
    whole frame in the reader's buffer and then copy it, holding a batch of bodies twice.
    """
    try:
        head = await requests.readexactly(wire.LENGTH.size)
    except asyncio.IncompleteReadError:
        return None
    frame = bytearray(wire.LENGTH.unpack(head)[0])
    with memoryview(frame) as view:
        filled = 0
        while filled < len(frame):
            piece = await requests.read(len(frame) - filled)
            if not piece:
                return None
            view[filled : filled + len(piece)] = piece
            filled += len(piece)
    return frame
