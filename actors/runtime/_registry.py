"""Keyed actors created on demand (per partner, per business key) and passivated when idle."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from functools import partial
from typing import Generic, TypeVar

from actors.runtime._actor import Actor
from actors.runtime._child import Child
from actors.runtime._errors import ActorStopped
from actors.runtime._mailbox import Envelope, MailboxStatistics
from actors.runtime._ref import ActorRef
from actors.runtime._supervisor import Supervisor
from actors.runtime._tally import RuntimeStatistics, Tally

__all__ = ["Registry"]

K = TypeVar("K", bound=Hashable)
M = TypeVar("M")
R = TypeVar("R")


class Registry(Generic[K, M, R]):
    """Keyed actors of one kind, each started by `factory(key)` on its first message.

    An actor idle (nothing queued) for `passivate_after` seconds is passivated: its
    `stopping()` runs, so it can save its state, and its task ends. The next message for the key
    rehydrates a fresh instance, which loads that state in `started()`. Only actors with recent
    work hold a task, so a million keys do not mean a million tasks.

    The rule that keeps passivation from losing a message: one key has at most one task at a
    time, and it leaves the registry only with an empty mailbox, checked and done with no await
    in between. A message that arrives while `stopping()` runs waits in the same mailbox; when
    `stopping()` has finished the task finds it and starts a fresh instance to serve it (that
    instance's `started()` sees the state just saved). A sender that finds no live task starts
    a new one. References from `ref(key)` stay valid across passivation.

    Restarts, dead letters and supervision are the `Supervisor`'s (per actor, per key).
    """

    def __init__(
        self,
        supervisor: Supervisor,
        name: str,
        factory: Callable[[K], Actor[M, R]],
        *,
        passivate_after: float | None = None,
    ) -> None:
        self.name = name
        self.config = supervisor.config
        self._supervisor = supervisor
        self._factory = factory
        self._passivate_after = (
            supervisor.config.passivate_after_s if passivate_after is None else passivate_after
        )
        self._tally = Tally(parent=supervisor.tally)
        self._live: dict[K, Child[M, R]] = {}

    def ref(self, key: K) -> ActorRef[M, R]:
        """The reference of the actor for `key`; the actor itself starts with its first message."""
        return KeyedRef(self, key)

    def _child_for(self, key: K) -> Child[M, R]:
        """The live actor for `key`, started now if it has no task."""
        child = self._live.get(key)
        if child is None:
            child = self._supervisor.start_child(
                f"{self.name}/{key}",
                partial(self._factory, key),
                tally=self._tally,
                idle_after=self._passivate_after,
                on_end=partial(self._ended, key),
            )
            self._live[key] = child
        return child

    def _ended(self, key: K, child: Child[M, R]) -> None:
        if self._live.get(key) is child:
            del self._live[key]
        if child.passivated:
            self._tally.add(passivated=1)

    def statistics(self) -> RuntimeStatistics:
        return self._tally.statistics(
            live=len(self._live),
            mailbox_depth=sum(child.mailbox.statistics().depth for child in self._live.values()),
        )


class KeyedRef(ActorRef[M, R]):
    """Reference to a keyed actor: each message goes to the key's live task, or starts one."""

    def __init__(self, registry: Registry[K, M, R], key: K) -> None:
        super().__init__(f"{registry.name}/{key}", ask_timeout=registry.config.ask_timeout_s)
        self._registry = registry
        self._key = key

    async def _post(self, envelope: Envelope[M, R]) -> None:
        while True:
            child = self._registry._child_for(self._key)
            try:
                await child.mailbox.post(envelope)
            except ActorStopped:
                # The task passivated while this sender waited (only an empty, idle mailbox is
                # closed that way, so the message was not in it): the next task takes it.
                if child.passivated:
                    continue
                raise
            return

    def _post_nowait(self, envelope: Envelope[M, R]) -> None:
        # Lookup and queueing happen with no await between them, so no passivation can slip in.
        self._registry._child_for(self._key).mailbox.post_nowait(envelope)

    def statistics(self) -> MailboxStatistics:
        child = self._registry._live.get(self._key)
        if child is not None:
            return child.mailbox.statistics()
        size = self._registry.config.mailbox_size
        return MailboxStatistics(depth=0, max_size=size, waiting_senders=0, processed=0)
