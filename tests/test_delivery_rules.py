"""The per-endpoint rules of delivery: the retry schedule with jitter, the circuit breaker."""

from __future__ import annotations

import pytest

from actors.delivery import CircuitBreaker, retry_delay

SCHEDULE = (5.0, 300.0, 1800.0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("attempts_made", "wait"), [(1, 5.0), (2, 300.0), (3, 1800.0)])
def test_each_retry_waits_its_entry_of_the_schedule(attempts_made: int, wait: float) -> None:
    assert retry_delay(SCHEDULE, attempts_made, 0.0) == wait


def test_the_schedule_spent_means_no_more_retries() -> None:
    assert retry_delay(SCHEDULE, len(SCHEDULE) + 1, 0.0) is None


@pytest.mark.parametrize("draw", [-0.2, 0.2])
def test_jitter_moves_the_wait_by_at_most_its_fraction(draw: float) -> None:
    wait = retry_delay(SCHEDULE, 2, 0.2, uniform=lambda low, high: draw)
    assert wait == pytest.approx(300.0 * (1 + draw))


def test_breaker_opens_after_the_configured_consecutive_failures() -> None:
    breaker = CircuitBreaker(3, 30.0, clock=Clock())
    for _ in range(2):
        breaker.failure()
    assert breaker.ready()
    breaker.failure()
    assert breaker.state == "open"
    assert not breaker.ready()


def test_a_success_resets_the_count_of_consecutive_failures() -> None:
    breaker = CircuitBreaker(2, 30.0, clock=Clock())
    breaker.failure()
    breaker.success()
    breaker.failure()
    assert breaker.state == "closed"


def test_after_the_cool_down_one_probe_goes_and_its_success_closes_the_circuit() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 30.0, clock=clock)
    breaker.failure()
    assert breaker.wait_s() == 30.0
    clock.now += 30.0
    assert breaker.state == "half_open"
    assert breaker.ready()
    breaker.begin()
    assert not breaker.ready()  # one probe at a time
    breaker.success()
    assert breaker.state == "closed"


def test_a_failed_probe_opens_the_circuit_for_another_cool_down() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 30.0, clock=clock)
    breaker.failure()
    clock.now += 30.0
    breaker.begin()
    breaker.failure()
    assert breaker.state == "open"
    assert breaker.wait_s() == 30.0


def test_a_neutral_answer_to_the_probe_lets_another_probe_go() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 30.0, clock=clock)
    breaker.failure()
    clock.now += 30.0
    breaker.begin()
    breaker.neutral()
    assert breaker.ready()
