"""The restart budget of one child: OTP restart intensity, with refunds for poison messages."""

from __future__ import annotations

from collections import deque

import anyio

__all__ = ["RestartBudget"]


class RestartBudget:
    """Allows at most `max_restarts` restarts within any `period` seconds.

    Each restart is charged with its cause: the envelope whose handling crashed, or None for a
    crash outside `receive`. `refund(cause)` takes back a cause's charges when its message is
    dead-lettered, so a poison message stops weighing on the budget once it is set aside.
    """

    def __init__(
        self, *, max_restarts: int, period: float, backoff_initial: float, backoff_max: float
    ) -> None:
        self._max_restarts = max_restarts
        self._period = period
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
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
        """Delay before the next restart: doubled for each restart still inside the period."""
        recent = len(self._charges)
        if recent == 0:
            return 0.0
        # The exponent is capped so a large budget cannot overflow the float.
        return min(self._backoff_max, self._backoff_initial * 2.0 ** min(recent - 1, 64))
