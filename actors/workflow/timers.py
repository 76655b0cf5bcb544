"""The timer service: one per process, it fires the threads' durable timers when they are due.

It sleeps until the earliest armed timer is due (or until woken: a step armed an earlier one),
then tells each due timer's thread `TimerFired(kind, generation)`. The thread's step claims the
timer by its generation in the same transaction as the state change, so a timer fires at most
once however often it is told; timers that came due while the process was down fire at once on
start. The clock is injectable: tests move time and wake the service instead of sleeping.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio

from actors.workflow.feeder import Threads
from actors.workflow.inputs import ThreadKey, TimerFired
from actors.workflow.ports import DueTimer, DueTimers
from canonical.errors import StoreUnavailable

__all__ = ["TimerService"]

log = logging.getLogger(__name__)

# Timers fired per pass; more due than this are fired in the next pass, at once.
DEFAULT_BATCH = 256
# A timer its thread could not take is told again after this long (not in a tight loop).
RETRY_AFTER_S = 5.0


class TimerService:
    """Fires due timers; run it in a task group, `wake()` it when a step arms a timer."""

    def __init__(
        self,
        source: DueTimers,
        threads: Threads,
        *,
        clock: Callable[[], float],
        max_sleep_s: float,
        batch: int = DEFAULT_BATCH,
    ) -> None:
        self._source = source
        self._threads = threads
        self._clock = clock
        self._max_sleep_s = max_sleep_s
        self._batch = batch
        self._woken = anyio.Event()
        # (thread, kind, generation) -> when to tell it again, for timers a thread could not take.
        self._retry_at: dict[tuple[ThreadKey, str, int], float] = {}
        self.fired = 0  # firings a thread applied

    def wake(self) -> None:
        self._woken.set()

    async def run(self) -> None:
        while True:
            self._woken = anyio.Event()
            now = self._clock()
            try:
                due = await self._source.due(now, self._batch)
                if len(due) < self._batch:  # every due timer is listed: forget the others
                    listed = {_id(t) for t in due}
                    self._retry_at = {k: v for k, v in self._retry_at.items() if k in listed}
                ready = [t for t in due if self._retry_at.get(_id(t), 0.0) <= now]
                if ready:
                    await self._fire(ready)
                    continue
                next_due = await self._source.next_due()
            except StoreUnavailable as exc:
                log.warning("timer service: the store is unavailable, retrying: %s", exc)
                await anyio.sleep(RETRY_AFTER_S)
                continue
            with anyio.move_on_after(self._sleep(now, next_due)):
                await self._woken.wait()

    def _sleep(self, now: float, next_due: float | None) -> float:
        wait = self._max_sleep_s
        if next_due is not None and next_due > now:
            wait = min(wait, next_due - now)
        if self._retry_at:
            wait = min(wait, max(0.0, min(self._retry_at.values()) - now))
        return wait

    async def _fire(self, due: list[DueTimer]) -> None:
        by_thread: dict[ThreadKey, list[DueTimer]] = {}
        for timer in due:
            by_thread.setdefault(timer.key, []).append(timer)
        async with anyio.create_task_group() as tg:
            for key, timers in by_thread.items():
                tg.start_soon(self._fire_thread, key, timers)

    async def _fire_thread(self, key: ThreadKey, timers: list[DueTimer]) -> None:
        thread = self._threads(key)
        for timer in timers:
            try:
                outcome = await thread.ask(
                    TimerFired.of(timer.kind, timer.generation, timer.due_at)
                )
            except Exception as exc:
                # Unavailable, or crashed on it until dead-lettered: told again later, the
                # claim keeps it to one firing whenever one gets through.
                log.warning("thread %s could not take its %s timer: %s", key, timer.kind, exc)
                self._retry_at[_id(timer)] = self._clock() + RETRY_AFTER_S
                continue
            self._retry_at.pop(_id(timer), None)
            if outcome == "applied":
                self.fired += 1


def _id(timer: DueTimer) -> tuple[ThreadKey, str, int]:
    return (timer.key, timer.kind, timer.generation)
