"""Keyed actors: created on demand, passivated when idle, rehydrated with their state."""

from __future__ import annotations

import anyio
import pytest

from actors.runtime import (
    Actor,
    InMemoryDeadLetters,
    InMemoryStateStore,
    Registry,
    RuntimeConfig,
    StateStore,
    Supervisor,
)

pytestmark = pytest.mark.anyio

CONFIG = RuntimeConfig(
    mailbox_size=4,
    passivate_after_s=0.05,
    backoff_initial_s=0.001,
    backoff_max_s=0.002,
    shutdown_deadline_s=5.0,
)


class Counter(Actor[str, int]):
    """Counts "increment" messages per key; keeps the count in the state store while passive."""

    def __init__(self, key: str, store: StateStore, stopped: StopLog) -> None:
        self.key = key
        self.store = store
        self.stopped = stopped
        self.count = 0

    async def started(self) -> None:
        saved = await self.store.load(self.key)
        self.count = int(saved) if saved is not None else 0

    async def receive(self, message: str) -> int:
        self.count += 1
        return self.count

    async def stopping(self) -> None:
        self.stopped.stopping.set()
        await self.stopped.before_save.wait()
        await self.store.save(self.key, str(self.count).encode())
        self.stopped.record()


class StopLog:
    """Counts finished `stopping()` calls and says when `expected` of them have run."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.count = 0
        self.all_stopped = anyio.Event()
        self.stopping = anyio.Event()
        self.before_save = anyio.Event()
        self.before_save.set()

    def record(self) -> None:
        self.count += 1
        if self.count == self.expected:
            self.all_stopped.set()


def counters_of(
    supervisor: Supervisor, store: StateStore, stopped: StopLog, *, name: str
) -> Registry[str, str, int]:
    return Registry(supervisor, name, lambda key: Counter(key, store, stopped))


async def test_an_idle_actor_is_passivated_and_rehydrated_with_its_state() -> None:
    store, stopped = InMemoryStateStore(), StopLog(expected=1)
    async with Supervisor(CONFIG, dead_letters=InMemoryDeadLetters()) as supervisor:
        counters = counters_of(supervisor, store, stopped, name="counters")
        ref = counters.ref("PO-1001")
        for _ in range(3):
            await ref.ask("increment")
        await stopped.all_stopped.wait()
        stats = counters.statistics()
        assert (stats.live, stats.passivated) == (0, 1)
        assert store.states == {"PO-1001": b"3"}

        assert await ref.ask("increment") == 4
        assert counters.statistics().live == 1


async def test_ten_thousand_idle_keys_leave_no_live_task() -> None:
    keys = [f"SKU-{n}" for n in range(10_000)]
    store, stopped = InMemoryStateStore(), StopLog(expected=len(keys))
    async with Supervisor(CONFIG, dead_letters=InMemoryDeadLetters()) as supervisor:
        counters = counters_of(supervisor, store, stopped, name="positions")
        for key in keys:
            await counters.ref(key).tell("increment")
        assert counters.statistics().live > 0
        await stopped.all_stopped.wait()
        stats = counters.statistics()
        assert (stats.live, stats.passivated, stats.mailbox_depth) == (0, len(keys), 0)
        assert supervisor.statistics().live == 0
    assert len(store.states) == len(keys)
    assert set(store.states.values()) == {b"1"}


async def test_a_message_arriving_while_the_actor_passivates_is_served_after_the_save() -> None:
    store, stopped = InMemoryStateStore(), StopLog(expected=1)
    stopped.before_save = anyio.Event()  # hold the save, as a slow store would
    answers: list[int] = []
    async with Supervisor(CONFIG, dead_letters=InMemoryDeadLetters()) as supervisor:
        counters = counters_of(supervisor, store, stopped, name="counters")
        ref = counters.ref("PO-1001")
        for _ in range(3):
            await ref.ask("increment")

        async def increment() -> None:
            answers.append(await ref.ask("increment"))

        async with anyio.create_task_group() as askers:
            await stopped.stopping.wait()  # idle: passivation began, the save is held
            askers.start_soon(increment)
            await anyio.wait_all_tasks_blocked()  # the ask waits in the passivating mailbox
            assert store.states == {}
            stopped.before_save.set()

    assert answers == [4]
    assert store.states == {"PO-1001": b"4"}


async def test_a_tell_racing_with_the_end_of_passivation_reaches_the_next_instance() -> None:
    store, stopped = InMemoryStateStore(), StopLog(expected=1)
    stopped.before_save = anyio.Event()
    async with Supervisor(CONFIG, dead_letters=InMemoryDeadLetters()) as supervisor:
        counters = counters_of(supervisor, store, stopped, name="counters")
        ref = counters.ref("PO-1001")
        for _ in range(3):
            await ref.ask("increment")
        await stopped.stopping.wait()
        # The save finishes and the actor leaves while this tell is on its way into the
        # mailbox it looked up: the tell must land in the next instance, not vanish.
        stopped.before_save.set()
        await ref.tell("increment")
        assert await ref.ask("increment") == 5
        assert counters.statistics().passivated == 1


async def test_each_key_has_its_own_actor() -> None:
    store, stopped = InMemoryStateStore(), StopLog(expected=2)
    async with Supervisor(CONFIG, dead_letters=InMemoryDeadLetters()) as supervisor:
        counters = counters_of(supervisor, store, stopped, name="counters")
        await counters.ref("PO-1").ask("increment")
        assert await counters.ref("PO-2").ask("increment") == 1
        assert await counters.ref("PO-1").ask("increment") == 2
        assert counters.statistics().live == 2
