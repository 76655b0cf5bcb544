"""A circuit breaker for one endpoint: stop calling a partner that keeps failing, probe later."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

__all__ = ["BreakerState", "CircuitBreaker"]

BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Closed -> open after `failures` consecutive failures -> half-open after `cooldown_s`.

    Half-open lets one probe through: its success closes the circuit, its failure opens it for
    another cool-down. Callers ask `ready()` before an attempt, then `begin()` when they make
    it, and report `success()`, `failure()` or `neutral()` (an answer that says nothing about
    the endpoint's health, such as 429 or 410).
    """

    __slots__ = ("_clock", "_consecutive", "_cooldown_s", "_failures", "_opened_at", "_probing")

    def __init__(
        self, failures: int, cooldown_s: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if failures < 1 or cooldown_s <= 0:
            raise ValueError("failures must be >= 1 and cooldown_s > 0")
        self._failures = failures
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._consecutive = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> BreakerState:
        """Return the state now: a cooled-down open circuit reads as half-open."""
        if self._opened_at is None:
            return "closed"
        if self._probing or self._clock() >= self._opened_at + self._cooldown_s:
            return "half_open"
        return "open"

    def ready(self) -> bool:
        """Return True if an attempt may start now."""
        state = self.state
        return state == "closed" or (state == "half_open" and not self._probing)

    def wait_s(self) -> float:
        """Return the seconds until a probe may go (0 when one may go now or is under way)."""
        if self._opened_at is None or self._probing:
            return 0.0
        return max(0.0, self._opened_at + self._cooldown_s - self._clock())

    def begin(self) -> None:
        """Note that an attempt started; in half-open, it is the one probe."""
        if self._opened_at is not None:
            self._probing = True

    def success(self) -> None:
        self._consecutive = 0
        self._opened_at = None
        self._probing = False

    def failure(self) -> None:
        self._consecutive += 1
        if self._opened_at is not None or self._consecutive >= self._failures:
            self._opened_at = self._clock()
        self._probing = False

    def neutral(self) -> None:
        self._probing = False
