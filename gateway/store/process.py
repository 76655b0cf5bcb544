"""The store's writer connection, in a process of its own.

Group commits used to run in a thread of the gateway's process. SQLite releases the GIL for
each statement and the writer must take it back afterwards, from an event loop that holds it
almost all the time under load: the writer thread blocked on the GIL ~48 times a batch
(11k context switches a second), and the store's inserts cost a third of ingest throughput
although SQLite's own work is small. A process has its own GIL: the event loop now pays one
pipe write and one read a batch, and the batch's SQLite work runs beside it on another core.

The child (`serve`, run by the gateway's own interpreter) owns the only write connection. It
reads one request at a time from stdin and answers on stdout, each a 4-byte big-endian length and a
payload: the batch's acceptances as msgpack (typed, ~0.2 us each) and its other writes
(`functools.partial`s of `gateway.store.writer` functions) pickled; the answer is pickled.
The pipe is private to the two processes.

Lifetime: the child ignores SIGINT and SIGTERM and exits when stdin closes, so it finishes
the transaction it is in whatever happens to the parent: on an orderly close, on Ctrl-C to
the process group, and on SIGKILL of the parent (the kernel closes the pipe). If the child
dies, the batch it had is answered `WriterLost` (its outcome is unknown: it may have
committed, and a retry is then answered from the inbox) and the next batch starts a new one.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import sqlite3
import struct
import sys
from collections.abc import Sequence
from typing import Any, BinaryIO

import msgspec

from gateway.store import schema, writer
from gateway.store.records import Acceptance

__all__ = ["WriterLost", "WriterProcess", "serve"]

_LENGTH = struct.Struct(">I")
# How long close() waits for the child to finish its transaction and exit before killing it.
_EXIT_TIMEOUT_S = 10.0


class WriterLost(sqlite3.OperationalError):
    """The writer process exited during a request; whether that batch committed is unknown."""


class _Request(msgspec.Struct, array_like=True):
    acceptances: list[Acceptance]
    # Pickled list of operations; empty when there are none (the common case under load).
    operations: bytes
    now: float


_encode_request = msgspec.msgpack.Encoder().encode
_decode_request = msgspec.msgpack.Decoder(_Request).decode


class WriterProcess:
    """The parent's handle on the writer child: one request at a time, restarted when lost."""

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
            "-c",
            f"import sys; from {__name__} import serve; sys.exit(serve(sys.argv[1:]))",
            path,
            synchronous,
            str(busy_timeout_ms),
            str(journal_size_limit),
        )
        self._child: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        """The child's process id while one runs."""
        return None if self._child is None else self._child.pid

    async def start(self) -> None:
        """Start the child and wait until its connection is ready and the schema migrated.

        Raises what the child raised while opening (`ConfigError` for a newer schema,
        `sqlite3.Error`), or `WriterLost` if it exited before answering.
        """
        child = await asyncio.create_subprocess_exec(
            *self._argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        self._child = child
        try:
            await self._answer(child)
        except BaseException:
            self._child = None
            await _stop(child)
            raise

    async def commit(
        self,
        acceptances: Sequence[Acceptance],
        operations: Sequence[writer.Operation],
        now: float,
    ) -> tuple[list[writer.AcceptOutcome], list[Any]]:
        """Run `writer.commit_batch` in the child; return its answers, or raise its error."""
        request = _encode_request(
            _Request(
                acceptances=list(acceptances),
                operations=pickle.dumps(list(operations), pickle.HIGHEST_PROTOCOL)
                if operations
                else b"",
                now=now,
            )
        )
        frame = _LENGTH.pack(len(request)) + request
        # A child that died while idle (killed, OOM) has not seen this request: start another
        # and send it there, once. A child that dies after taking it is `WriterLost`.
        for attempt in range(2):
            if self._child is None or self._child.returncode is not None:
                await self.start()
            child = self._child
            assert child is not None
            assert child.stdin is not None
            try:
                child.stdin.write(frame)
                await child.stdin.drain()
            except (BrokenPipeError, ConnectionResetError) as exc:
                lost = await self._lost(child)
                if attempt:
                    raise lost from exc
                continue
            answers, results = await self._answer(child)
            return answers, results
        raise AssertionError("unreachable")

    async def close(self) -> None:
        """Close the child's stdin and wait for it to exit (killed after a timeout)."""
        child, self._child = self._child, None
        if child is not None:
            await _stop(child)

    async def _answer(self, child: asyncio.subprocess.Process) -> Any:
        assert child.stdout is not None
        try:
            head = await child.stdout.readexactly(_LENGTH.size)
            payload = await child.stdout.readexactly(_LENGTH.unpack(head)[0])
        except asyncio.IncompleteReadError as exc:
            raise await self._lost(child) from exc
        ok, value = pickle.loads(payload)
        if not ok:
            raise value
        return value

    async def _lost(self, child: asyncio.subprocess.Process) -> WriterLost:
        self._child = None
        code = await child.wait()
        return WriterLost(
            f"the store's writer process exited (code {code}) during a commit; the outcome of "
            "that commit is unknown, and a retry is answered from the inbox if it was kept"
        )


async def _stop(child: asyncio.subprocess.Process) -> None:
    if child.stdin is not None:
        child.stdin.close()
    try:
        await asyncio.wait_for(child.wait(), _EXIT_TIMEOUT_S)
    except TimeoutError:
        child.kill()
        await child.wait()


# The child


def serve(argv: Sequence[str]) -> int:
    """The child's main: `serve([path, synchronous, busy_timeout_ms, journal_size_limit])`."""
    path, sync, busy_timeout_ms, size_limit = argv
    synchronous: schema.Synchronous = "FULL" if sync == "FULL" else "NORMAL"
    # The parent decides when this process ends: by closing stdin, after its last request.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    requests = os.fdopen(os.dup(0), "rb", buffering=0)
    answers = os.fdopen(os.dup(1), "wb", buffering=0)
    # Nothing else may write to the answer pipe.
    os.dup2(2, 1)
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
    while (payload := _receive(requests)) is not None:
        request = _decode_request(payload)
        operations = pickle.loads(request.operations) if request.operations else []
        try:
            result = writer.commit_batch(conn, request.acceptances, operations, request.now)
        except Exception as exc:
            _send(answers, False, exc)
        else:
            _send(answers, True, result)
    conn.close()
    return 0


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
    except Exception as exc:  # an error that does not pickle still reaches the parent
        payload = pickle.dumps((False, sqlite3.OperationalError(f"{type(value)}: {exc}")))
    stream.write(_LENGTH.pack(len(payload)) + payload)
