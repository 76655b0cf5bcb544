"""What a delivery actor knows of its partner, and the one rule for the wait between attempts."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from msgspec import Struct

__all__ = ["DeliveryPolicy", "retry_delay"]


class DeliveryPolicy(Struct, frozen=True, kw_only=True):
    """One partner's delivery rules, mapped by the gateway from the `DeliveryRules` its
    outbound channel's configuration carries (gateway/config/delivery.py: the defaults live
    there, once, for every channel).

    `retry_schedule_s[n]` is the wait before retry n + 1; the first attempt is immediate, so a
    delivery gets `len(retry_schedule_s) + 1` attempts before it becomes a dead letter.
    `max_retry_after_s` caps the wait an outcome asks for (`RetryAfter.delay_s`).
    """

    partner_id: str
    concurrency: int
    rate_per_second: float
    burst: int
    retry_schedule_s: tuple[float, ...]
    jitter: float
    max_age_s: float
    breaker_failures: int
    breaker_cooldown_s: float
    max_retry_after_s: float


def retry_delay(
    schedule: Sequence[float],
    attempts_made: int,
    jitter: float,
    *,
    uniform: Callable[[float, float], float] = random.uniform,
) -> float | None:
    """Return the wait before the next attempt after `attempts_made` attempts, or None.

    None means the schedule is spent: the delivery is a dead letter. The wait is the schedule's
    entry +/- `jitter` of it, so messages that failed together do not all return together.
    """
    if attempts_made < 1 or attempts_made > len(schedule):
        return None
    nominal = schedule[attempts_made - 1]
    return max(0.0, nominal * (1.0 + uniform(-jitter, jitter))) if jitter else nominal
