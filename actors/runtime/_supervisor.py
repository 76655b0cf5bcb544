"""The one-for-one supervisor: owns the task group every actor runs in, and its shutdown."""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Any, Self, TypeVar

import anyio
from anyio.abc import TaskGroup

from actors.runtime._actor import Actor
from actors.runtime._budget import Backoff, RestartBudget, doubling
from actors.runtime._child import Child
from actors.runtime._config import RestartPolicy, RuntimeConfig
from actors.runtime._dead_letters import DeadLetterSink
from actors.runtime._errors import ActorStopped
from actors.runtime._ref import ActorRef, MailboxRef
from actors.runtime._service import Service
from actors.runtime._tally import RuntimeStatistics, Tally

__all__ = ["Supervisor"]

M = TypeVar("M")
R = TypeVar("R")

logger = logging.getLogger("actors.runtime")


class Supervisor:
    """Runs actors one-for-one in a task group it owns: restarts crashes, escalates repeats.

    Use it as an async context manager; each actor is one task in its task group::

        async with Supervisor(config, dead_letters=sink) as supervisor:
            relay = supervisor.spawn("relay", OutboxRelay)
            ...
            undrained = await supervisor.shutdown(deadline=5.0)

    Crashes (any exception from an actor but the refusals it names in `Actor.refusals`): only the
    crashed actor is replaced by a fresh instance from its factory (OTP one_for_one), after a
    backoff that doubles with each restart inside `restart_period_s`. Its mailbox, and so every
    reference to it, lives on, and the message it crashed on is retried first.

    Poison messages and the restart budget: when the same message has crashed its actor
    `poison_threshold` times it goes to the dead-letter sink with the exception, its asker (if
    any) gets that exception, and the actor moves on to the next message. The budget is per
    actor: more than `max_restarts` restarts within `restart_period_s` and the supervisor gives
    up, raising `Escalation` (actor name, last error) into its parent's task group, which ends
    every actor here. A dead-lettered message's retries are refunded but one, so one poison
    message never escalates on its own (the config requires `poison_threshold <= max_restarts +
    1`), while a run of them, or an actor whose `started()` keeps failing, does: that is a
    fault restarts do not fix. A dead-letter sink that fails escalates at once.

    Services (`start_service`: loops with no mailbox, such as couriers and queue consumers)
    are supervised the same way: a crash is charged to the service's own budget and its
    `run()` is awaited again after the backoff; past the budget, `Escalation`. Restarts of
    actors and services alike are counted in `statistics().restarts`.

    Backoff: `backoff(n, minimum=..., maximum=...)` is the wait before a restart when n
    restarts are inside the period, within the child's bounds (`backoff_initial_s`,
    `backoff_max_s`); without one, a plain doubling. The gateway passes its one jittered rule
    (`canonical.backoff.backoff_delay`), so every restart it paces follows one arithmetic.

    Shutdown: `shutdown(deadline)` (also run on leaving the block, with `shutdown_deadline_s`)
    refuses new messages (`ActorStopped`), lets every actor drain its mailbox and run
    `stopping()`, cancels what is still running at the deadline, services included (they run
    until then, so actors draining still have couriers), and returns how many accepted
    messages were not handled. If the block raises, actors and services are cancelled at once.
    """

    def __init__(
        self,
        config: RuntimeConfig,
        *,
        dead_letters: DeadLetterSink,
        backoff: Backoff | None = None,
    ) -> None:
        self.config = config
        self.dead_letters = dead_letters
        self.tally = Tally()
        self._backoff: Backoff = doubling if backoff is None else backoff
        self._children: set[Child[Any, Any]] = set()
        self._services: set[Service] = set()
        self._closing = False
        self._task_group: TaskGroup | None = None
        self._all_ended: anyio.Event | None = None
        self._context: AbstractAsyncContextManager[Self] | None = None

    @property
    def closing(self) -> bool:
        """True once the supervisor takes no new messages."""
        return self._closing

    async def __aenter__(self) -> Self:
        self._context = self._running()
        return await self._context.__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        if self._context is None:
            raise RuntimeError("supervisor was not entered")
        return await self._context.__aexit__(exc_type, exc, tb)

    @asynccontextmanager
    async def _running(self) -> AsyncIterator[Self]:
        self._all_ended = anyio.Event()
        async with anyio.create_task_group() as task_group:
            self._task_group = task_group
            try:
                yield self
            except BaseException:
                # The block failed or was cancelled (also how an escalation reaches it).
                self._stop_accepting()
                for child in self._children:
                    child.cancel()
                for service in self._services:
                    service.cancel()
                raise
            await self.shutdown()

    def spawn(self, name: str, factory: Callable[[], Actor[M, R]]) -> ActorRef[M, R]:
        """Start an actor that lives until shutdown; `name` appears in logs and dead letters."""
        child = self.start_child(name, factory)
        return MailboxRef(child.mailbox, ask_timeout=self.config.ask_timeout_s)

    def start_child(
        self,
        name: str,
        factory: Callable[[], Actor[M, R]],
        *,
        tally: Tally | None = None,
        idle_after: float = math.inf,
        on_end: Callable[[Child[M, R]], None] | None = None,
    ) -> Child[M, R]:
        """Start a supervised actor task (the `Registry` adds idling and its own bookkeeping)."""
        if self._task_group is None:
            raise RuntimeError("supervisor is not running: use it as `async with`")
        if self._closing:
            raise ActorStopped(f"supervisor is shut down; actor {name!r} not started")

        def ended(child: Child[M, R]) -> None:
            self._children.discard(child)
            if on_end is not None:
                on_end(child)
            if self._closing and not self._children and self._all_ended is not None:
                self._all_ended.set()

        child = Child(
            name,
            factory,
            config=self.config,
            dead_letters=self.dead_letters,
            tally=tally or self.tally,
            idle_after=idle_after,
            on_end=ended,
            backoff=self._backoff,
        )
        self._children.add(child)
        self._task_group.start_soon(child.run, name=f"actor {name}")
        return child

    def start_service(
        self,
        name: str,
        run: Callable[[], Awaitable[None]],
        *,
        restarts: RestartPolicy | None = None,
    ) -> Service:
        """Run `run()` as a supervised service until shutdown; restart it when it crashes.

        `name` appears in logs and in an `Escalation`; `restarts` is the service's own budget
        and pacing (default: the runtime's). Returns the service's handle.
        """
        if self._task_group is None:
            raise RuntimeError("supervisor is not running: use it as `async with`")
        if self._closing:
            raise ActorStopped(f"supervisor is shut down; service {name!r} not started")
        service = Service(
            name,
            run,
            budget=RestartBudget(restarts or self.config.restart_policy(), self._backoff),
            tally=self.tally,
            on_end=self._services.discard,
        )
        self._services.add(service)
        self._task_group.start_soon(service.serve, name=f"service {name}")
        return service

    async def shutdown(self, deadline: float | None = None) -> int:
        """Stop taking messages, drain within `deadline` seconds, cancel the rest.

        Returns the number of accepted messages left unhandled (queued, or in hand when
        cancelled) so the caller can log it; their askers get `ActorStopped`. Calling it again
        returns 0.
        """
        if self._all_ended is None:
            raise RuntimeError("supervisor is not running: use it as `async with`")
        self._stop_accepting()
        with anyio.move_on_after(self.config.shutdown_deadline_s if deadline is None else deadline):
            await self._all_ended.wait()
        undrained = sum(child.undrained() for child in self._children)
        for child in self._children:
            child.cancel()
        # Cancelled actors clean up synchronously, so this does not wait on actor code again.
        await self._all_ended.wait()
        # Services run until the actors are done (a draining thread's deliveries still go);
        # their own cleanup is bounded by each service (a channel's close timeout), and they
        # all clean up at once, not one after another.
        services = list(self._services)
        for service in services:
            service.cancel()
        for service in services:
            await service.stop()
        return undrained

    def _stop_accepting(self) -> None:
        self._closing = True
        for child in self._children:
            child.mailbox.close_for_senders()
        if not self._children and self._all_ended is not None:
            self._all_ended.set()

    def statistics(self) -> RuntimeStatistics:
        """Every actor of this supervisor, registries' included."""
        return self.tally.statistics(
            live=len(self._children) + len(self._services),
            mailbox_depth=sum(child.mailbox.statistics().depth for child in self._children),
        )
