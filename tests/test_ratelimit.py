"""The token bucket: burst, refill, and the wait it reports."""

from __future__ import annotations

import pytest

from actors.ratelimit import TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_allows_a_burst_then_reports_the_wait() -> None:
    clock = Clock()
    bucket = TokenBucket(2.0, 3, clock=clock)
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() == pytest.approx(0.5)


def test_tokens_refill_at_the_rate_and_never_past_the_burst() -> None:
    clock = Clock()
    bucket = TokenBucket(10.0, 2, clock=clock)
    bucket.take()
    bucket.take()
    clock.now += 0.1
    assert bucket.take() == 0.0
    assert bucket.take() > 0
    clock.now += 3600
    assert [bucket.take() for _ in range(3)][:2] == [0.0, 0.0]
    assert bucket.take() > 0


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_nonsense_bounds_are_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(rate, burst)
