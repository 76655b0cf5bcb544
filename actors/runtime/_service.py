"""One supervised service: a long-running task, run again after each crash within its budget."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import anyio

from actors.runtime._budget import RestartBudget
from actors.runtime._errors import Escalation
from actors.runtime._tally import Tally

__all__ = ["Service"]

logger = logging.getLogger("actors.runtime")


class Service:
    """A supervised loop with no mailbox (a courier, a queue consumer, the outbox relay).

    Its task awaits `run()`; when that raises, the crash is charged to the service's restart
    budget and `run()` is awaited again after the backoff, on the same object: what the
    service keeps between runs (counters, a breaker) is its own business, and what it must
    not lose lives in the store. Past the budget the task raises `Escalation`, as an actor's
    does, unless its policy says `past_budget = "stop"`: then the service alone ends, with
    `gave_up` set to the escalation, and its peers run on. A `run()` that returns has finished
    its work, and the service ends (OTP's transient restart). The errors a service recovers
    from itself (a lost connection it reconnects) never reach here; whatever does is a fault a
    fresh start may cure, or escalates.

    The handle is what `Supervisor.start_service` returns: `restarts` and `last_error` for
    reports, `stop()` to end the service before its supervisor shuts down (stop intake first).
    """

    def __init__(
        self,
        name: str,
        run: Callable[[], Awaitable[None]],
        *,
        budget: RestartBudget,
        tally: Tally,
        on_end: Callable[[Service], None],
    ) -> None:
        self.name = name
        self.restarts = 0
        self.last_error: Exception | None = None
        self.gave_up: Escalation | None = None
        self._run = run
        self._budget = budget
        self._tally = tally
        self._on_end = on_end
        # Created now, entered by the task: cancelling before the task runs still counts.
        self._scope = anyio.CancelScope()
        self._ended = anyio.Event()

    @property
    def running(self) -> bool:
        """True until the service's task has ended (stopped, finished or escalated)."""
        return not self._ended.is_set()

    def cancel(self) -> None:
        """End the service's task (its `run()` is cancelled); does not wait for it."""
        self._scope.cancel()

    async def stop(self) -> None:
        """Cancel the service and wait until its task has ended (its cleanup has run)."""
        self.cancel()
        await self._ended.wait()

    async def serve(self) -> None:
        """The service's task (started in its supervisor's task group)."""
        try:
            with self._scope:
                while True:
                    try:
                        await self._run()
                    except Escalation:
                        raise
                    except Exception as error:
                        self.last_error = error
                        try:
                            delay = self._budget.restart_delay(self.name, error, None)
                        except Escalation as escalation:
                            if not self._budget.stops_past_budget:
                                raise
                            self._give_up(escalation)
                            return
                        self.restarts += 1
                        self._tally.add(restarts=1)
                        logger.warning(
                            "service %s crashed; restarting in %.3f s",
                            self.name,
                            delay,
                            exc_info=error,
                        )
                        await anyio.sleep(delay)
                        continue
                    return
        finally:
            self._ended.set()
            self._on_end(self)

    def _give_up(self, escalation: Escalation) -> None:
        self.gave_up = escalation
        self._tally.add(given_up=1)
        logger.error(
            "service %s stopped: %s; its peers run on, restart the gateway once it is fixed",
            self.name,
            escalation,
            exc_info=escalation.__cause__,
        )
