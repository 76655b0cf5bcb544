"""The restart budget of one child: OTP restart intensity, with refunds for poison messages."""

from __future__ import annotations

from collections import deque
from typing import Protocol

import anyio

from actors.runtime._config import RestartPolicy
from actors.runtime._errors import Escalation

__all__ = ["Backoff", "RestartBudget", "doubling"]


class Backoff(Protocol):
    """A backoff rule: the wait before retry number `attempt` (1, 2, ...) within the bounds.

    `canonical.backoff.backoff_delay` has this shape; the gateway hands it to its supervisors.
    """

    def __call__(self, attempt: int, *, minimum: float, maximum: float) -> float: ...


def doubling(attempt: int, *, minimum: float, maximum: float) -> float:
    """The runtime's rule when it is given none: `minimum` doubled per attempt, capped.

    The runtime imports no domain, so it cannot reach the gateway's one jittered rule
    (`canonical.backoff`) itself; the gateway passes that rule to the `Supervisor`.
    """
    # The exponent is capped so a large budget cannot overflow the float.
    return min(maximum, minimum * 2.0 ** min(max(attempt, 1) - 1, 64))


class RestartBudget:
    """Allows at most `policy.max_restarts` restarts within any `policy.period_s` seconds.

    Each restart is charged with its cause: the envelope whose handling crashed, or None for a
    crash outside `receive` (and for every crash of a service). `refund(cause)` takes back a
    cause's charges when its message is dead-lettered, so a poison message stops weighing on
    the budget once it is set aside.
    """

    def __init__(self, policy: RestartPolicy, backoff: Backoff) -> None:
        self._max_restarts = policy.max_restarts
        self._period = policy.period_s
        self._minimum = policy.backoff_initial_s
        self._maximum = policy.backoff_max_s
        self._backoff = backoff
        self.stops_past_budget = policy.past_budget == "stop"
        self._charges: deque[tuple[float, object | None]] = deque()

    def charge(self, cause: object | None) -> bool:
        """Record one restart; False when that goes past the budget (time to escalate)."""
        now = anyio.current_time()
        while self._charges and self._charges[0][0] <= now - self._period:
            self._charges.popleft()
        self._charges.append((now, cause))
        return len(self._charges) <= self._max_restarts

    def refund(self, cause: object) -> None:
        """Forget the restarts charged to `cause`."""
        self._charges = deque(charge for charge in self._charges if charge[1] is not cause)

    def backoff(self) -> float:
        """Delay before the next restart: longer for each restart still inside the period."""
        recent = len(self._charges)
        if recent == 0:
            return 0.0
        return self._backoff(recent, minimum=self._minimum, maximum=self._maximum)

    def restart_delay(self, name: str, error: Exception, cause: object | None) -> float:
        """Charge a crash of `name`; return the wait before its restart, or raise `Escalation`."""
        if not self.charge(cause):
            raise Escalation(
                name,
                error,
                f"crashed more than {self._max_restarts} times within {self._period:g} s",
            ) from error
        return self.backoff()
