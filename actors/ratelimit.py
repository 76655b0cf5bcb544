"""A token bucket: the one rate-limit rule, for ingress per partner and (later) egress."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["TokenBucket"]

# Refill arithmetic in floats can land a hair under a whole token (0.1 s * 10/s = 0.999...);
# that must not turn into a 429 with a one-second Retry-After.
_EPSILON = 1e-9


class TokenBucket:
    """`rate` tokens per second refill a bucket of `burst`; each request takes one.

    `take()` returns 0.0 when a token was taken, else the seconds until one will be there
    (the `Retry-After` a caller should be given). Not thread-safe: one bucket, one actor.
    """

    __slots__ = ("_clock", "_stamp", "_tokens", "burst", "rate")

    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()

    def take(self) -> float:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1.0 - _EPSILON:
            self._tokens = max(0.0, self._tokens - 1.0)
            return 0.0
        return (1.0 - self._tokens) / self.rate
