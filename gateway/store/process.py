"""The store's writer connection, in a process of its own.

Group commits used to run in a thread of the gateway's process. SQLite releases the GIL for
each statement and the writer must take it back afterwards, from an event loop that holds it
almost all the time under load: the writer thread blocked on the GIL ~48 times a batch
(11k context switches a second), and the store's inserts cost a third of ingest throughput
although SQLite's own work is small. A process has its own GIL: the event loop now pays one
pipe write and two reads a batch, and the batch's SQLite work runs beside it on another core.

The child (`serve`, run by the gateway's own interpreter) owns the only write connection. It
reads one request at a time from its stdin and answers on its stdout: a request is a 4-byte
big-endian length and a msgpack payload (each acceptance encoded on its own, ~0.2 us; each
other write a pickled `functools.partial` of a `gateway.store.writer` function); the child
writes one byte once it holds the whole request, then a length-prefixed pickled answer. The
pipe is private to the two processes. A request the parent cannot encode, or the child cannot
decode, fails alone, as a constraint violation does in `writer.commit_batch`.

Lifetime: the child ignores SIGINT and SIGTERM and exits when its stdin closes, so it finishes
the transaction it is in whatever happens to the parent: an orderly close, Ctrl-C to the
process group, SIGKILL of the parent (the kernel closes the pipe). If the child dies before
taking a request, the request goes to a new child. If it dies holding one, that batch fails
with `WriterLost`: it may have committed, so a retried acceptance is answered from the inbox,
while other writes of that batch may have been applied. A child that does not start, or dies on its
first request, is not restarted for a while (1 s, doubling up to 30 s).
"""

from __future__ import annotations

import asyncio
import os
import pickle
import sqlite3
import struct
import sys
import time
from collections.abc import Sequence
from typing import Any, BinaryIO

import anyio
import msgspec

from canonical.errors import ConfigError, GatewayError
from gateway.store import schema, writer
from gateway.store.records import Acceptance

__all__ = ["WriterLost", "WriterProcess", "serve"]

_LENGTH = struct.Struct(">I")
_TAKEN = b"\x01"
# Seconds a restarted child gets to open its connection (the first start, which may migrate,
# has no bound); close()'s wait for it to finish its transaction and exit before it is killed.
_RESTART_TIMEOUT_S = 60.0
_EXIT_TIMEOUT_S = 10.0
# Restart pacing for a child that cannot start or dies on its first request.
_BACKOFF_MIN_S = 1.0
_BACKOFF_MAX_S = 30.0

# Run with -P (no working directory on sys.path): the child imports the gateway the parent
# runs, never a `gateway/` folder that happens to be where it was started. Signals and the
# answer pipe are set up before any import, so neither can reach it half started.
_CHILD = """\
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
answers = os.dup(1)
os.dup2(2, 1)
from gateway.store.process import serve
sys.exit(serve(sys.argv[1:], answers))
"""


class WriterLost(sqlite3.OperationalError):
    """The writer process is gone or did not start; a batch it held has an unknown outcome."""


class _Request(msgspec.Struct, array_like=True):
    acceptances: list[msgspec.Raw]
    operations: list[bytes]
    now: float


_encode = msgspec.msgpack.Encoder().encode
_decode_request = msgspec.msgpack.Decoder(_Request).decode
_decode_acceptance = msgspec.msgpack.Decoder(Acceptance).decode


class WriterProcess:
    """The parent's handle on the writer child: one request at a time, replaced when lost."""

    def __init__(
        self,
        path: str,
        *,
        synchronous: schema.Synchronous,
        busy_timeout_ms: int,
        journal_size_limit: int,
    ) -> None:
        self._argv = (
            sys.executable,
            "-P",
            "-c",
            _CHILD,
            path,
            synchronous,
            str(busy_timeout_ms),
            str(journal_size_limit),
            str(schema.SCHEMA_VERSION),
        )
        self._child: asyncio.subprocess.Process | None = None
        self._one_at_a_time = asyncio.Lock()
        # Requests the current child has answered: one that dies on its first is not
        # restarted at once (it may die on every one).
        self._answered = 0
        self._closed = False
        self._backoff = 0.0
        self._restart_at = 0.0

    @property
    def pid(self) -> int | None:
        """The child's process id while one runs and is ready."""
        return None if self._child is None else self._child.pid

    async def start(self) -> None:
        """Start the child and wait until its connection is open and the schema migrated.

        Unbounded in time: the first start may run a long migration (restarts are bounded by
        the caller). Raises what the child raised while opening (`ConfigError` for a newer
        schema, `sqlite3.Error`), `WriterLost` if it exited or the handle was closed
        meanwhile, `OSError` if it could not be started.
        """
        if self._closed:
            raise WriterLost("the store's writer process is closed")
        if self._child is not None:
            return
        child = await asyncio.create_subprocess_exec(
            *self._argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        try:
            await _answer(child)
            if self._closed:
                raise WriterLost("the store's writer process was closed while it started")
        except BaseException:
            with anyio.CancelScope(shield=True):
                await _stop(child, kill=True)
            raise
        self._child = child
        self._answered = 0

    async def commit(
        self,
        acceptances: Sequence[Acceptance],
        operations: Sequence[writer.Operation],
        now: float,
    ) -> tuple[list[writer.AcceptOutcome], list[Any]]:
        """Run `writer.commit_batch` in the child; return its answers, or raise its error.

        An acceptance or operation that cannot be encoded is answered alone (a `GatewayError`,
        an `OperationFailed`) and not sent. Raises `WriterLost` when no child can take the
        batch or the child dies holding it, `sqlite3.Error` when the batch did not commit.
        """
        answers: list[Any] = [None] * len(acceptances)
        results: list[Any] = [None] * len(operations)
        sent_acceptances: list[int] = []
        sent_operations: list[int] = []
        encoded: list[msgspec.Raw] = []
        pickled: list[bytes] = []
        for i, acceptance in enumerate(acceptances):
            try:
                encoded.append(msgspec.Raw(_encode(acceptance)))
            except Exception as exc:  # TypeError, OverflowError: a bug upstream, this request's
                answers[i] = GatewayError(f"the store cannot keep the request's rows: {exc}")
            else:
                sent_acceptances.append(i)
        for i, operation in enumerate(operations):
            try:
                pickled.append(pickle.dumps(operation, pickle.HIGHEST_PROTOCOL))
            except Exception as exc:
                results[i] = writer.OperationFailed(exc)
            else:
                sent_operations.append(i)
        request = _encode(_Request(acceptances=encoded, operations=pickled, now=now))
        got_answers, got_results = await self._exchange(_LENGTH.pack(len(request)) + request)
        for i, answer in zip(sent_acceptances, got_answers, strict=True):
            answers[i] = answer
        for i, result in zip(sent_operations, got_results, strict=True):
            results[i] = result
        return answers, results

    async def close(self) -> None:
        """Close the child's stdin and wait for it to exit (killed after a timeout)."""
        self._closed = True
        child, self._child = self._child, None
        if child is not None:
            await _stop(child)

    async def _exchange(self, frame: bytes) -> Any:
        # A child that died before taking the request (EOF instead of the "taken" byte) never
        # began it: the request goes to a new child, once. After the child has taken it, its
        # death is `WriterLost`. One exchange at a time: answers come back in order.
        async with self._one_at_a_time:
            for attempt in range(2):
                child = await self._running()
                assert child.stdin is not None
                assert child.stdout is not None
                try:
                    child.stdin.write(frame)
                    await child.stdin.drain()
                    taken = await child.stdout.read(len(_TAKEN))
                    if taken == _TAKEN:
                        payload = await _read_answer(child)
                        self._answered += 1
                        return _unpack(payload)
                    if taken:
                        raise WriterLost(f"the store's writer process answered {taken!r}")
                except (BrokenPipeError, ConnectionResetError):
                    pass
                except BaseException as exc:
                    # Died holding the request, cancelled, or out of step: its answer must
                    # never reach the next request. One that died on its very first request
                    # may die on every one: restarts are paced.
                    first = isinstance(exc, WriterLost) and not self._answered
                    with anyio.CancelScope(shield=True):
                        await self._forget(child, kill=True, pace=first)
                    raise
                await self._forget(child, pace=bool(attempt))
            raise WriterLost("the store's writer process exited twice before taking a batch")

    async def _running(self) -> asyncio.subprocess.Process:
        if self._child is not None and self._child.returncode is None:
            return self._child
        if self._child is not None:
            await self._forget(self._child)
        if time.monotonic() < self._restart_at:
            raise WriterLost("the store's writer process is restarting; try again shortly")
        try:
            with anyio.fail_after(_RESTART_TIMEOUT_S):
                await self.start()
        except (OSError, WriterLost, GatewayError, sqlite3.Error) as exc:  # TimeoutError too
            self._pace()
            raise WriterLost(f"could not start the store's writer process: {exc}") from exc
        assert self._child is not None
        return self._child

    async def _forget(
        self, child: asyncio.subprocess.Process, *, kill: bool = False, pace: bool = False
    ) -> None:
        """Let `child` go (killing it first if asked); with `pace`, hold back the next start."""
        if self._child is child:
            self._child = None
        if pace:
            self._pace()
        else:
            self._backoff = 0.0
        await _stop(child, kill=kill)

    def _pace(self) -> None:
        self._backoff = min(max(2 * self._backoff, _BACKOFF_MIN_S), _BACKOFF_MAX_S)
        self._restart_at = time.monotonic() + self._backoff


async def _answer(child: asyncio.subprocess.Process) -> Any:
    """Read one answer; return its value or raise the error it carries."""
    return _unpack(await _read_answer(child))


async def _read_answer(child: asyncio.subprocess.Process) -> bytes:
    assert child.stdout is not None
    try:
        head = await child.stdout.readexactly(_LENGTH.size)
        return await child.stdout.readexactly(_LENGTH.unpack(head)[0])
    except asyncio.IncompleteReadError:
        code = await child.wait()
        raise WriterLost(
            f"the store's writer process exited (code {code}) holding a request; whether it "
            "committed is unknown (a retried acceptance is answered from the inbox if it did)"
        ) from None


def _unpack(payload: bytes) -> Any:
    try:
        ok, value = pickle.loads(payload)
    except Exception as exc:
        raise sqlite3.OperationalError(f"unreadable answer from the writer process: {exc}") from exc
    if not ok:
        raise value
    return value


async def _stop(child: asyncio.subprocess.Process, *, kill: bool = False) -> None:
    if kill and child.returncode is None:
        child.kill()
    if child.stdin is not None:
        child.stdin.close()
    try:
        with anyio.fail_after(_EXIT_TIMEOUT_S):
            await child.wait()
    except TimeoutError:
        child.kill()
        await child.wait()


# The child


def serve(argv: Sequence[str], answer_fd: int) -> int:
    """The child's main: `serve([path, synchronous, busy_timeout_ms, size_limit, schema], fd)`.

    `schema` is the parent's schema version. A child started from other code than its parent
    (the gateway was upgraded in place, then its writer restarted) refuses to start rather
    than migrate the store under a parent that does not know the new schema.
    """
    path, sync, busy_timeout_ms, size_limit, parent_schema = argv
    synchronous: schema.Synchronous = "FULL" if sync == "FULL" else "NORMAL"
    requests = os.fdopen(os.dup(0), "rb", buffering=0)
    answers = os.fdopen(answer_fd, "wb", buffering=0)
    if int(parent_schema) != schema.SCHEMA_VERSION:
        refusal = ConfigError(
            f"the store writer's code has schema {schema.SCHEMA_VERSION}, the gateway's "
            f"{parent_schema}: the gateway was upgraded while running; restart it"
        )
        _send(answers, False, refusal)
        return 1
    conn = sqlite3.connect(
        path, isolation_level=None, cached_statements=writer.STATEMENT_CACHE_SIZE
    )
    try:
        schema.prepare_writer(
            conn,
            synchronous=synchronous,
            busy_timeout_ms=int(busy_timeout_ms),
            journal_size_limit=int(size_limit),
        )
    except Exception as exc:
        _send(answers, False, exc)
        return 1
    _send(answers, True, None)
    try:
        while (payload := _receive(requests)) is not None:
            answers.write(_TAKEN)
            try:
                result = _commit(conn, payload)
            except Exception as exc:
                _send(answers, False, exc)
            else:
                _send(answers, True, result)
    except BrokenPipeError:
        pass  # the parent is gone: nobody is left to answer, and stdin is closing too
    finally:
        conn.close()
    return 0


def _commit(conn: sqlite3.Connection, payload: bytes) -> tuple[list[Any], list[Any]]:
    """Decode one request and run it; a part that does not decode fails alone."""
    request = _decode_request(payload)
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
    done_answers, done_results = writer.commit_batch(conn, acceptances, operations, request.now)
    fill = iter(done_answers)
    answers = [next(fill) if a is None else a for a in answers]
    fill = iter(done_results)
    results = [next(fill) if r is None else r for r in results]
    return answers, results


def _receive(stream: BinaryIO) -> bytes | None:
    head = _read(stream, _LENGTH.size)
    return None if head is None else _read(stream, _LENGTH.unpack(head)[0])


def _read(stream: BinaryIO, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = stream.read(size)
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _send(stream: BinaryIO, ok: bool, value: object) -> None:
    try:
        payload = pickle.dumps((ok, value), pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # the parent learns of it all the same
        error = sqlite3.OperationalError(f"the writer's answer does not pickle: {exc}")
        payload = pickle.dumps((False, error), pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(payload)) + payload)
