"""The store's writer connection, in a process of its own.

Group commits used to run in a thread of the gateway's process. SQLite releases the GIL for
each statement and the writer must take it back afterwards, from an event loop that holds it
almost all the time under load: the writer thread blocked on the GIL ~48 times a batch
(11k context switches a second), and the store's inserts cost a third of ingest throughput
although SQLite's own work is small. A process has its own GIL: the event loop now pays one
pipe write and two reads a batch, and the batch's SQLite work runs beside it on another core.

The child (gateway/store/child.py, run by the gateway's own interpreter) owns the only write
connection, and runs the outbox relay beside it: the relay's work then takes no time from the
event loop that answers webhooks. It reads one request at a time from its stdin and answers on
its stdout (gateway/store/wire.py). A request the parent cannot encode, or the child cannot
decode, fails alone, as a constraint violation does in `writer.commit_batch`. The store asks
for the relay's report twice a second (for /metrics and /readyz), which also starts a new child
when the last one died between requests: the relay never stays down with its process.

Lifetime: the child ignores SIGINT and SIGTERM and exits when its stdin closes, so it finishes
the transaction it is in whatever happens to the parent: an orderly close, Ctrl-C to the
process group, SIGKILL of the parent (the kernel closes the pipe); its relay stops with it
(rows confirmed but not yet marked are published again by the next child: at-least-once, as
after any crash). If the child dies before taking a request, the request goes to a new child.
If it dies holding one, that batch fails with `WriterLost`: it may have committed, so a
retried acceptance is answered from the inbox, while other writes of that batch may have been
applied. A child that does not start, or dies on its first commit, is not restarted for a
while (1 s, doubling up to 30 s).
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import anyio
import msgspec

from canonical.backoff import backoff_delay
from canonical.errors import GatewayError
from gateway.store import schema, wire, writer
from gateway.store.records import Acceptance

__all__ = ["WriterLost", "WriterProcess"]

# Seconds a restarted child gets to open its connection (the first start, which may migrate,
# has no bound); close()'s wait for it to finish its transaction and exit before it is killed.
_RESTART_TIMEOUT_S = 60.0
_EXIT_TIMEOUT_S = 10.0
# A flush holds the writer for at most this long at a time.
_FLUSH_SLICE_S = 0.1
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
signal.signal(signal.SIGHUP, signal.SIG_IGN)
answers = os.dup(1)
os.dup2(2, 1)
from gateway.store.child import serve
sys.exit(serve(sys.argv[1:], answers))
"""


class WriterLost(sqlite3.OperationalError):
    """The writer process is gone or did not start; a batch it held has an unknown outcome."""


_encode = wire.encode


class WriterProcess:
    """The parent's handle on the writer child: one request at a time, replaced when lost."""

    def __init__(
        self,
        path: str,
        *,
        synchronous: schema.Synchronous,
        busy_timeout_ms: int,
        journal_size_limit: int,
        relay: wire.RelayFactory | None = None,
        configure_logging: Callable[[], None] | None = None,
        tracer: wire.TracerFactory | None = None,
    ) -> None:
        """`relay`, when given, is pickled and called in the child (`gateway.relay.build_relay`
        bound to its settings). So are `configure_logging` (without it the child logs through
        the stdlib's basic set-up at the level the root logger has now) and `tracer`."""
        level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
        setup = wire.Setup(relay, configure_logging, level, tracer)
        self._setup = wire.frame(pickle.dumps(setup, pickle.HIGHEST_PROTOCOL))
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
        # Commits the current child has answered: one that dies on its first is not
        # restarted at once (it may die on every one).
        self._answered = 0
        self._closed = False
        # Paced restarts in a row (reset by a healthy child), and the time the next may start.
        self._failed_starts = 0
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
        assert child.stdin is not None
        try:
            child.stdin.write(self._setup)
            await child.stdin.drain()
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
        pickled: list[bytes] = []
        for i, operation in enumerate(operations):
            try:
                pickled.append(pickle.dumps(operation, pickle.HIGHEST_PROTOCOL))
            except Exception as exc:
                results[i] = writer.OperationFailed(exc)
            else:
                sent_operations.append(i)
        # The frame goes to `_exchange` without a name here: it is let go once the child has
        # read it, not held while the child commits (it is as large as the batch's bodies).
        got_answers, got_results = await self._exchange(
            _commit_frame(acceptances, pickled, now, answers, sent_acceptances), commit=True
        )
        for i, answer in zip(sent_acceptances, got_answers, strict=True):
            answers[i] = answer
        for i, result in zip(sent_operations, got_results, strict=True):
            results[i] = result
        return answers, results

    async def relay_report(self) -> Any:
        """The relay's report from the child (None when it runs no relay).

        Starts a new child if the last one died. Raises `WriterLost` when none can run.
        """
        return await self._exchange(wire.framed(wire.Status()), commit=False)

    async def flush_relay(self, within_s: float) -> bool:
        """Let the child's relay publish what is pending, for up to `within_s` seconds.

        True once the outbox was seen empty; False at once when the relay has no broker
        connection (nothing could go out), or when the time ran out. Asked in slices of
        `_FLUSH_SLICE_S`, so other writes (the couriers' settles) go in between.
        """
        deadline = time.monotonic() + within_s
        while (remaining := deadline - time.monotonic()) > 0:
            flush = wire.framed(wire.Flush(min(_FLUSH_SLICE_S, remaining)))
            answer = await self._exchange(flush, commit=False)
            if answer != "pending":
                return bool(answer == "flushed")
        return False

    async def close(self) -> None:
        """Close the child's stdin and wait for it to exit (killed after a timeout)."""
        self._closed = True
        child, self._child = self._child, None
        if child is not None:
            await _stop(child)

    async def _exchange(self, frame: bytearray, *, commit: bool) -> Any:
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
                    taken = await child.stdout.read(len(wire.TAKEN))
                    if taken == wire.TAKEN:
                        frame = bytearray()  # the child holds the request now
                        payload = await _read_answer(child)
                    elif taken:
                        raise WriterLost(f"the store's writer process answered {taken!r}")
                except (BrokenPipeError, ConnectionResetError):
                    taken = b""
                except BaseException as exc:
                    # Died holding the request, cancelled, or out of step: its answer must
                    # never reach the next request. One that died on its very first request
                    # may die on every one: restarts are paced.
                    first = isinstance(exc, WriterLost) and not self._answered
                    with anyio.CancelScope(shield=True):
                        await self._forget(child, kill=True, pace=first)
                    raise
                if taken:
                    # An error answer (a batch that did not commit) leaves the child in step.
                    # Only commits count as proof of health: the store's poll would otherwise
                    # lift the pacing of a child that dies on every batch.
                    if commit:
                        self._answered += 1
                    return wire.unpack_answer(payload)
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
            self._failed_starts = 0
        await _stop(child, kill=kill)

    def _pace(self) -> None:
        # The gateway's one backoff rule. The store may import no actor, so the runtime's
        # supervisor cannot hold this process; unjittered: one writer has no crowd to spread.
        self._failed_starts += 1
        delay = backoff_delay(
            self._failed_starts, minimum=_BACKOFF_MIN_S, maximum=_BACKOFF_MAX_S, jitter=False
        )
        self._restart_at = time.monotonic() + delay


def _commit_frame(
    acceptances: Sequence[Acceptance],
    operations: list[bytes],
    now: float,
    answers: list[Any],
    sent: list[int],
) -> bytearray:
    """Frame a commit, the acceptances encoded in one pass; list in `sent` those it carries.

    Only when one does not encode (TypeError, OverflowError: a bug upstream) are they encoded
    one by one, and that one is answered alone in `answers` and not sent.
    """
    try:
        frame = wire.framed(wire.CommitOut(list(acceptances), operations, now))
    except Exception:
        encoded: list[msgspec.Raw] = []
        for i, acceptance in enumerate(acceptances):
            try:
                encoded.append(msgspec.Raw(_encode(acceptance)))
            except Exception as exc:
                answers[i] = GatewayError(f"the store cannot keep the request's rows: {exc}")
            else:
                sent.append(i)
        return wire.framed(wire.Commit(encoded, operations, now))
    sent.extend(range(len(acceptances)))
    return frame


async def _answer(child: asyncio.subprocess.Process) -> Any:
    """Read one answer; return its value or raise the error it carries."""
    return wire.unpack_answer(await _read_answer(child))


async def _read_answer(child: asyncio.subprocess.Process) -> bytes:
    assert child.stdout is not None
    try:
        head = await child.stdout.readexactly(wire.LENGTH.size)
        return await child.stdout.readexactly(wire.LENGTH.unpack(head)[0])
    except asyncio.IncompleteReadError:
        code = await child.wait()
        raise WriterLost(
            f"the store's writer process exited (code {code}) holding a request; whether it "
            "committed is unknown (a retried acceptance is answered from the inbox if it did)"
        ) from None


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
