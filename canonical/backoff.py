"""The one reconnect/restart backoff rule: reconnects, the supervisors' restarts, the writer.

It lives in canonical because canonical is the one package every other may import (actors
and protocols may not import each other); it is a pure function with no I/O.
"""

from __future__ import annotations

import random

__all__ = ["backoff_delay"]


def backoff_delay(attempt: int, *, minimum: float, maximum: float, jitter: bool = True) -> float:
    """Return the wait before retry number `attempt` (1, 2, ...): doubling, capped, jittered.

    "Equal jitter", as dramatiq's compute_backoff: half the nominal delay is fixed and half
    random, so many clients restarted together spread out, yet none retries sooner than half
    the nominal delay. `jitter=False` gives the nominal delay, for a lone restarter with no
    crowd to spread out (the store's one writer process).
    """
    # The exponent is capped so a long outage cannot overflow the float.
    nominal = min(maximum, minimum * 2.0 ** min(max(attempt, 1) - 1, 64))
    if not jitter:
        return nominal
    return nominal / 2 + random.uniform(0.0, nominal / 2)
