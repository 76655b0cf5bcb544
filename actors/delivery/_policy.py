"""What a delivery actor knows of its partner, and the one rule for the wait between attempts."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from msgspec import Struct

__all__ = ["DeliveryPolicy", "retry_delay"]


class DeliveryPolicy(Struct, frozen=True, kw_only=True):
    """One partner's delivery rules, mapped from its `outbound` configuration by the gateway.

    `retry_schedule_s[n]` is the wait before retry n + 1; the first attempt is immediate, so a
    delivery gets `len(retry_schedule_s) + 1` attempts before it becomes a dead letter.
    """

    partner_id: str
    concurrency: int = 4
    rate_per_second: float = 20.0
    burst: int = 20
    retry_schedule_s: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
    jitter: float = 0.2
    max_age_s: float = 4 * 24 * 3600.0
    breaker_failures: int = 5
    breaker_cooldown_s: float = 30.0
    max_retry_after_s: float = 24 * 3600.0


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
