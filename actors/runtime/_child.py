"""One supervised actor: its mailbox and the loop over its incarnations, crashes and poison."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic, TypeVar

import anyio

from actors.runtime._actor import Actor
from actors.runtime._budget import Backoff, RestartBudget
from actors.runtime._config import RuntimeConfig
from actors.runtime._dead_letters import DeadLetterSink
from actors.runtime._errors import ActorStopped, ActorUnavailable, Escalation
from actors.runtime._mailbox import Envelope, Mailbox
from actors.runtime._tally import Tally

__all__ = ["Child"]

M = TypeVar("M")
R = TypeVar("R")

logger = logging.getLogger("actors.runtime")


class Child(Generic[M, R]):
    """One supervised actor: a mailbox that outlives its instances, and the task serving it.

    The task builds an instance from the factory, runs `started()`, serves the mailbox, and on a
    crash restarts a fresh instance after a backoff, first retrying the message that crashed.
    It ends when the mailbox is closed and drained (shutdown), when it was idle for `idle_after`
    seconds with nothing queued (passivation: `passivated` is then True), when it is cancelled,
    or by raising `Escalation`. However it ends, its mailbox is closed and every asker still
    waiting is told `ActorStopped`, then `on_end(child)` runs.
    """

    def __init__(
        self,
        name: str,
        factory: Callable[[], Actor[M, R]],
        *,
        config: RuntimeConfig,
        dead_letters: DeadLetterSink,
        tally: Tally,
        idle_after: float,
        on_end: Callable[[Child[M, R]], None],
        backoff: Backoff,
    ) -> None:
        self.name = name
        self.mailbox: Mailbox[M, R] = Mailbox(name, config.mailbox_size)
        self.passivated = False
        self._factory = factory
        self._config = config
        self._sink = dead_letters
        self._tally = tally
        self._idle_after = idle_after
        self._on_end = on_end
        self._budget = RestartBudget(config.restart_policy(), backoff)
        # Created now, entered by the task: cancelling before the task runs still counts.
        self._scope = anyio.CancelScope()
        # Taken from the mailbox and not yet answered or dead-lettered (kept across a crash).
        self._owed: Envelope[M, R] | None = None
        self._in_receive = False

    def undrained(self) -> int:
        """Messages accepted but not handled: queued, plus the one in hand or awaiting retry."""
        return self.mailbox.statistics().depth + (self._owed is not None)

    def cancel(self) -> None:
        self._scope.cancel()

    async def run(self) -> None:
        """The child's task (started in its supervisor's task group)."""
        try:
            with self._scope:
                await self._incarnations()
        finally:
            self._abandon()
            self._on_end(self)

    async def _incarnations(self) -> None:
        while True:
            try:
                actor = self._factory()
                await actor.started()
                if self._owed is not None:  # the message the previous instance crashed on
                    await self._handle(actor, self._owed)
                idle = await self._serve(actor)
                await actor.stopping()
            except Escalation:
                raise
            except Exception as error:
                await self._recover(error)
                continue
            # No await from this check to the end of the task (run's finally closes the mailbox
            # and leaves the registry synchronously): a sender either queued before it, and a
            # new instance serves the message, or finds the actor gone and creates another.
            # Messages that came in while stopping() ran wait here for an instance whose
            # started() runs after that save, so state is never loaded before it is saved.
            if self.mailbox.is_empty():
                self.passivated = idle
                return

    async def _serve(self, actor: Actor[M, R]) -> bool:
        """Handle messages until idle for `idle_after` (True) or closed and drained (False)."""
        while True:
            try:
                envelope = await self.mailbox.next(self._idle_after)
            except anyio.EndOfStream:
                return False
            if envelope is None:
                return True
            self._owed = envelope
            await self._handle(actor, envelope)

    async def _handle(self, actor: Actor[M, R], envelope: Envelope[M, R]) -> None:
        self._in_receive = True
        refusals: tuple[type[Exception], ...] = (ActorUnavailable, *actor.refusals)
        try:
            answer = await actor.receive(envelope.message)
        except refusals as refusal:
            # A refusal the actor names is the answer, not a crash: the instance keeps serving.
            self._in_receive = False
            if envelope.reply is not None:
                envelope.reply.fail(refusal)
            else:  # told, so nobody hears the refusal: keep it where it can be seen
                await self._dead_letter(envelope, refusal)
        else:
            self._in_receive = False
            if envelope.reply is not None:
                envelope.reply.succeed(answer)
        self._owed = None
        self.mailbox.processed += 1

    async def _recover(self, error: Exception) -> None:
        """Count a crash: set a poison message aside, escalate past the budget, else back off."""
        culprit = self._owed if self._in_receive else None
        self._in_receive = False
        if culprit is not None:
            culprit.crashes += 1
            if culprit.crashes >= self._config.poison_threshold:
                logger.error(
                    "actor %s: message dead-lettered after %d crashes",
                    self.name,
                    culprit.crashes,
                    exc_info=error,
                )
                await self._dead_letter(culprit, error)
                if culprit.reply is not None:
                    culprit.reply.fail(error)
                self._owed = None
                # The retries that proved it poison are refunded; this last restart is kept, so
                # a stream of poison messages (a systemic fault, not one bad message) escalates.
                self._budget.refund(culprit)
                culprit = None
        delay = self._budget.restart_delay(self.name, error, culprit)
        self._tally.add(restarts=1)
        logger.warning("actor %s crashed; restarting in %.3f s", self.name, delay, exc_info=error)
        await anyio.sleep(delay)

    async def _dead_letter(self, envelope: Envelope[M, R], error: BaseException) -> None:
        try:
            await self._sink.dead_letter(actor=self.name, message=envelope.message, error=error)
        except Exception as failure:
            # Dropping the message instead would lose it silently; the store is failing, which
            # is for the level above to decide on.
            raise Escalation(self.name, failure, "could not dead-letter a message") from failure
        self._tally.add(dead_letters=1)

    def _abandon(self) -> None:
        """Close the mailbox; whoever still waits for an answer hears that the actor stopped."""
        left = self.mailbox.close()
        if self._owed is not None:
            left.append(self._owed)
        for envelope in left:
            if envelope.reply is not None:
                envelope.reply.fail(ActorStopped(f"actor {self.name!r} stopped before answering"))
