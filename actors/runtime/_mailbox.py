"""The bounded mailbox in front of one actor, the envelope it carries and the one-shot reply."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

import anyio
import msgspec

from actors.runtime._errors import ActorStopped, MailboxFull

__all__ = ["Envelope", "Mailbox", "MailboxStatistics", "Reply"]

M = TypeVar("M")
R = TypeVar("R")


class MailboxStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """What a mailbox holds now; read by the gateway's metrics collector at scrape time."""

    depth: int  # messages buffered, not yet taken by the actor
    max_size: int  # the bound: depth never exceeds it
    waiting_senders: int  # tasks blocked in `tell` because the mailbox is full
    processed: int  # messages handled since this actor was started (or rehydrated)


class Reply(Generic[R]):
    """One-shot answer to an ask: given once by the actor, awaited by the asker."""

    __slots__ = ("_done", "_error", "_event", "_value")

    def __init__(self) -> None:
        # asyncio's Event, not anyio's: anyio looks up the running backend on every Event it
        # makes, which measured 10% of the request path; the runtime is asyncio-only anyway.
        self._event = asyncio.Event()
        self._done = False
        self._error: BaseException | None = None
        self._value: R | None = None

    @property
    def done(self) -> bool:
        return self._done

    def succeed(self, value: R) -> None:
        if not self._done:
            self._done, self._value = True, value
            self._event.set()

    def fail(self, error: BaseException) -> None:
        if not self._done:
            self._done, self._error = True, error
            self._event.set()

    async def wait(self) -> None:
        await self._event.wait()

    def outcome(self) -> R:
        """The answer, or the error the actor gave instead, raised here in the asker."""
        if self._error is not None:
            raise self._error
        return cast(R, self._value)


@dataclass(slots=True, eq=False)
class Envelope(Generic[M, R]):
    """A message on its way through a mailbox, with where its answer goes and its crash count."""

    message: M
    reply: Reply[R] | None = None
    crashes: int = 0


class Mailbox(Generic[M, R]):
    """A bounded anyio memory object stream: a full mailbox makes `post` wait, not grow.

    Both ends belong to the mailbox and are closed by it once, in `close_for_senders` (drain
    what is queued, refuse the rest) or `close` (hand back what is queued).
    """

    def __init__(self, actor: str, size: int) -> None:
        self.actor = actor
        self.processed = 0
        self._send, self._receive = anyio.create_memory_object_stream[Envelope[M, R]](size)

    async def post(self, envelope: Envelope[M, R]) -> None:
        """Queue an envelope, waiting for space while the mailbox is full."""
        try:
            await self._send.send(envelope)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise ActorStopped(f"actor {self.actor!r} is stopped") from None

    def post_nowait(self, envelope: Envelope[M, R]) -> None:
        """Queue an envelope now, or raise `MailboxFull`."""
        try:
            self._send.send_nowait(envelope)
        except anyio.WouldBlock:
            raise MailboxFull(f"mailbox of actor {self.actor!r} is full") from None
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise ActorStopped(f"actor {self.actor!r} is stopped") from None

    async def next(self, idle_after: float = math.inf) -> Envelope[M, R] | None:
        """The next envelope; None after `idle_after` seconds without one.

        Raises `anyio.EndOfStream` once senders are closed and everything queued was taken.
        """
        # A checkpoint per message even when the buffer is full, so one busy actor cannot hold
        # the event loop for a whole mailbox's worth of messages.
        await asyncio.sleep(0)  # anyio.lowlevel.checkpoint() without the backend lookup
        try:
            return self._receive.receive_nowait()
        except anyio.WouldBlock:
            pass
        # The cancel scope (and its timer) is only paid for when the actor is about to idle.
        with anyio.move_on_after(idle_after):
            return await self._receive.receive()
        return None

    def is_empty(self) -> bool:
        """Nothing queued and nobody waiting to queue."""
        stats = self._send.statistics()
        return stats.current_buffer_used == 0 and stats.tasks_waiting_send == 0

    def close_for_senders(self) -> None:
        """Refuse new envelopes (waiting senders get `ActorStopped`); queued ones stay to drain."""
        self._send.close()

    def close(self) -> list[Envelope[M, R]]:
        """Close both ends and hand back what was still queued, for its askers to be told."""
        # Senders first: a sender still waiting must hear "stopped", not have its envelope
        # pulled into the buffer by the drain below and then silently dropped.
        self._send.close()
        left: list[Envelope[M, R]] = []
        while True:
            try:
                left.append(self._receive.receive_nowait())
            except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                break
        self._receive.close()
        return left

    def statistics(self) -> MailboxStatistics:
        stats = self._send.statistics()
        return MailboxStatistics(
            depth=stats.current_buffer_used,
            max_size=int(stats.max_buffer_size),
            waiting_senders=stats.tasks_waiting_send,
            processed=self.processed,
        )
