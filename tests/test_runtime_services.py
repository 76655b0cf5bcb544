"""Supervised services (loops with no mailbox): restart with backoff, budget, escalation, stop."""

from __future__ import annotations

import anyio
import pytest

from actors.runtime import (
    Actor,
    Escalation,
    InMemoryDeadLetters,
    RestartPolicy,
    RuntimeConfig,
    Service,
    Supervisor,
)

pytestmark = pytest.mark.anyio

CONFIG = RuntimeConfig(
    max_restarts=2,
    restart_period_s=60.0,
    backoff_initial_s=0.001,
    backoff_max_s=0.004,
    shutdown_deadline_s=5.0,
)


class Paces:
    """A backoff rule that records what it was asked and waits as little as it may."""

    def __init__(self) -> None:
        self.asked: list[tuple[int, float, float]] = []

    def __call__(self, attempt: int, *, minimum: float, maximum: float) -> float:
        self.asked.append((attempt, minimum, maximum))
        return minimum


class Crashes:
    """A service whose first `times` runs crash; the next runs until cancelled."""

    def __init__(self, times: int) -> None:
        self.times = times
        self.runs = 0
        self.steady = anyio.Event()

    async def run(self) -> None:
        self.runs += 1
        if self.runs <= self.times:
            raise ConnectionResetError(f"run {self.runs} broke")
        self.steady.set()
        await anyio.sleep_forever()


async def test_a_crashed_service_runs_again_after_the_backoff_and_the_restart_is_counted() -> None:
    service = Crashes(times=2)
    paces = Paces()
    async with Supervisor(CONFIG, dead_letters=InMemoryDeadLetters(), backoff=paces) as sup:
        handle = sup.start_service("courier/acme", service.run)
        with anyio.fail_after(5):
            await service.steady.wait()
        assert (handle.restarts, sup.statistics().restarts) == (2, 2)
        assert isinstance(handle.last_error, ConnectionResetError)
    # Each restart waited what the rule said for the restarts inside the period, in bounds.
    assert paces.asked == [(1, 0.001, 0.004), (2, 0.001, 0.004)]
    assert service.runs == 3


async def test_a_service_crashing_past_its_budget_escalates_with_its_name_and_error() -> None:
    service = Crashes(times=10)
    escalation = pytest.RaisesExc(
        Escalation,
        match="crashed more than 2 times",
        check=lambda e: e.actor == "erp-consumer" and isinstance(e.error, ConnectionResetError),
    )
    with pytest.RaisesGroup(escalation):
        async with Supervisor(CONFIG, dead_letters=InMemoryDeadLetters()) as supervisor:
            supervisor.start_service("erp-consumer", service.run)
            await anyio.sleep_forever()
    assert service.runs == 3  # the first run and two restarts; the third crash is one too many


@pytest.mark.parametrize(("max_restarts", "runs"), [(0, 1), (4, 5)])
async def test_a_service_of_its_own_budget_escalates_by_that_budget(
    max_restarts: int, runs: int
) -> None:
    service = Crashes(times=10)
    own = RestartPolicy(
        max_restarts=max_restarts, period_s=60.0, backoff_initial_s=0.0, backoff_max_s=0.0
    )
    with pytest.RaisesGroup(Escalation):
        async with Supervisor(CONFIG, dead_letters=InMemoryDeadLetters()) as supervisor:
            supervisor.start_service("relay", service.run, restarts=own)
            await anyio.sleep_forever()
    assert service.runs == runs


async def test_a_service_that_stops_past_its_budget_ends_alone_and_its_peers_run_on() -> None:
    broken, healthy = Crashes(times=10), Crashes(times=0)
    alone = RestartPolicy(
        max_restarts=1,
        period_s=60.0,
        backoff_initial_s=0.0,
        backoff_max_s=0.0,
        past_budget="stop",
    )
    async with Supervisor(CONFIG, dead_letters=InMemoryDeadLetters()) as supervisor:
        handle = supervisor.start_service("courier/acme", broken.run, restarts=alone)
        supervisor.start_service("courier/beta", healthy.run, restarts=alone)
        with anyio.fail_after(5):
            while handle.running:
                await anyio.sleep(0.001)
            await healthy.steady.wait()
        assert handle.gave_up is not None
        assert handle.gave_up.actor == "courier/acme"
        assert isinstance(handle.gave_up.error, ConnectionResetError)
        assert supervisor.statistics().given_up == 1
        assert supervisor.statistics().live == 1  # courier/beta
    assert broken.runs == 2


async def test_a_service_that_returns_has_finished_and_is_not_run_again() -> None:
    runs: list[int] = []

    async def once() -> None:
        runs.append(1)

    async with Supervisor(CONFIG, dead_letters=InMemoryDeadLetters()) as supervisor:
        handle = supervisor.start_service("once", once)
        with anyio.fail_after(5):
            while handle.running:
                await anyio.sleep(0.001)
        assert supervisor.statistics().live == 0
    assert runs == [1]


async def test_stop_ends_a_service_before_its_supervisor_shuts_down() -> None:
    service = Crashes(times=0)
    async with Supervisor(CONFIG, dead_letters=InMemoryDeadLetters()) as supervisor:
        handle = supervisor.start_service("erp-consumer", service.run)
        with anyio.fail_after(5):
            await service.steady.wait()
        await handle.stop()
        assert not handle.running
        assert supervisor.statistics().live == 0


async def test_actors_drain_at_shutdown_while_services_still_run_then_services_stop() -> None:
    service = Crashes(times=0)
    seen: list[tuple[str, bool]] = []
    handle: Service | None = None

    class Notes(Actor[str, None]):
        async def receive(self, message: str) -> None:
            await anyio.sleep(0.001)  # each message takes a moment, so some wait in the mailbox
            assert handle is not None
            seen.append((message, handle.running))

    async with Supervisor(CONFIG, dead_letters=InMemoryDeadLetters()) as supervisor:
        handle = supervisor.start_service("courier/acme", service.run)
        ref = supervisor.spawn("thread", Notes)
        for n in range(5):
            await ref.tell(f"step-{n}")
        undrained = await supervisor.shutdown()
    assert undrained == 0
    assert seen == [(f"step-{n}", True) for n in range(5)]
    assert not handle.running
