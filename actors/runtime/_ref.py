"""Actor references: the address every other part uses to tell or ask an actor."""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from typing import Generic, TypeVar

from actors.runtime._errors import AskTimeout
from actors.runtime._mailbox import Envelope, Mailbox, MailboxStatistics, Reply

__all__ = ["ActorRef", "MailboxRef"]

M = TypeVar("M")
R = TypeVar("R")


class ActorRef(ABC, Generic[M, R]):
    """The address of an actor that takes messages `M` and answers `R`.

    A reference stays valid while its actor restarts (the mailbox outlives the crashed
    instance) and, for keyed actors, while it is passivated and rehydrated.
    """

    def __init__(self, name: str, *, ask_timeout: float) -> None:
        self.name = name
        self._ask_timeout = ask_timeout

    async def tell(self, message: M) -> None:
        """Queue a message, waiting while the mailbox is full (backpressure reaches the sender).

        Raises `ActorStopped` once the actor is shut down.
        """
        await self._post(Envelope(message))

    def tell_nowait(self, message: M) -> None:
        """Queue a message now; raises `MailboxFull` rather than wait, `ActorStopped` if stopped."""
        self._post_nowait(Envelope(message))

    # The timeout is part of ask's contract (it must end in AskTimeout, not a bare cancel, and
    # defaults from config), so it is a parameter rather than the caller's cancel scope.
    async def ask(self, message: M, *, timeout: float | None = None) -> R:  # noqa: ASYNC109
        """Send a message and wait for the answer.

        The timeout (default: the runtime's `ask_timeout_s`) covers waiting for mailbox space
        and for the answer. Raises `AskTimeout` when it runs out; the message may then still
        be handled, with nobody to answer. A refusal the actor raises is re-raised here,
        and so is the error of a message the actor kept crashing on until it was dead-lettered.
        """
        limit = self._ask_timeout if timeout is None else timeout
        reply: Reply[R] = Reply()
        # asyncio.timeout rather than anyio.move_on_after: the same on the asyncio backend (an
        # outer anyio cancellation still propagates), without anyio's per-scope backend lookup,
        # which py-spy put among the top entries of the request path.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(limit):
                await self._post(Envelope(message, reply))
                await reply.wait()
        # An answer that came in as the deadline struck is still the answer.
        if not reply.done:
            raise AskTimeout(f"actor {self.name!r} did not answer within {limit:g} s")
        return reply.outcome()

    @abstractmethod
    async def _post(self, envelope: Envelope[M, R]) -> None: ...

    @abstractmethod
    def _post_nowait(self, envelope: Envelope[M, R]) -> None: ...

    @abstractmethod
    def statistics(self) -> MailboxStatistics:
        """The actor's mailbox now."""


class MailboxRef(ActorRef[M, R]):
    """Reference to an actor with one mailbox for its whole life (a `Supervisor.spawn` child)."""

    def __init__(self, mailbox: Mailbox[M, R], *, ask_timeout: float) -> None:
        super().__init__(mailbox.actor, ask_timeout=ask_timeout)
        self._mailbox = mailbox

    async def _post(self, envelope: Envelope[M, R]) -> None:
        await self._mailbox.post(envelope)

    def _post_nowait(self, envelope: Envelope[M, R]) -> None:
        self._mailbox.post_nowait(envelope)

    def statistics(self) -> MailboxStatistics:
        return self._mailbox.statistics()
