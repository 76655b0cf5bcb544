"""Orderly shutdown: refuse new messages, drain within the deadline, report what was left."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest
from test_runtime_mailbox import Gated

from actors.runtime import (
    ActorRef,
    ActorStopped,
    InMemoryDeadLetters,
    Registry,
    RuntimeConfig,
    Supervisor,
)

pytestmark = pytest.mark.anyio

CONFIG = RuntimeConfig(
    mailbox_size=8, backoff_initial_s=0.001, backoff_max_s=0.002, shutdown_deadline_s=5.0
)


class Recorder(Gated):
    """Gated, and notes its own stop too."""

    async def stopping(self) -> None:
        self.seen.append("stopped")


async def test_shutdown_drains_queued_messages_within_its_deadline() -> None:
    gate, seen = anyio.Event(), list[object]()
    async with Supervisor(CONFIG, dead_letters=InMemoryDeadLetters()) as supervisor:
        ref = supervisor.spawn("recorder", lambda: Recorder(gate, seen))
        for n in range(5):
            await ref.tell(n)
        await anyio.wait_all_tasks_blocked()
        assert ref.statistics().depth == 4
        gate.set()
        assert await supervisor.shutdown(deadline=5.0) == 0
    assert seen == [0, 1, 2, 3, 4, "stopped"]


async def test_shutdown_reports_the_messages_left_when_its_deadline_is_too_short() -> None:
    never = anyio.Event()
    async with Supervisor(CONFIG, dead_letters=InMemoryDeadLetters()) as supervisor:
        ref = supervisor.spawn("stuck", lambda: Recorder(never, []))
        for n in range(4):
            await ref.tell(n)
        await anyio.wait_all_tasks_blocked()
        # Message 0 in hand and three queued: none of them handled.
        assert await supervisor.shutdown(deadline=0.01) == 4
        assert supervisor.statistics().live == 0


async def test_an_ask_left_at_the_deadline_fails_with_actor_stopped() -> None:
    never, outcomes = anyio.Event(), list[str]()
    async with Supervisor(CONFIG, dead_letters=InMemoryDeadLetters()) as supervisor:
        ref = supervisor.spawn("stuck", lambda: Recorder(never, []))
        await ref.tell(0)

        async def ask() -> None:
            try:
                await ref.ask(1, timeout=60.0)
            except ActorStopped:
                outcomes.append("stopped")

        async with anyio.create_task_group() as askers:
            askers.start_soon(ask)
            await anyio.wait_all_tasks_blocked()
            assert await supervisor.shutdown(deadline=0.01) == 2
    assert outcomes == ["stopped"]


def spawned(supervisor: Supervisor) -> ActorRef[int, int]:
    return supervisor.spawn("recorder", lambda: Recorder(anyio.Event(), []))


def keyed(supervisor: Supervisor) -> ActorRef[int, int]:
    registry: Registry[str, int, int] = Registry(
        supervisor, "recorders", lambda key: Recorder(anyio.Event(), [])
    )
    return registry.ref("PO-1001")


@pytest.mark.parametrize("make_ref", [spawned, keyed])
async def test_tell_after_shutdown_raises_actor_stopped(
    make_ref: Callable[[Supervisor], ActorRef[int, int]],
) -> None:
    async with Supervisor(CONFIG, dead_letters=InMemoryDeadLetters()) as supervisor:
        ref = make_ref(supervisor)
        await supervisor.shutdown()
        with pytest.raises(ActorStopped):
            await ref.tell(1)
        with pytest.raises(ActorStopped):
            ref.tell_nowait(1)


async def test_leaving_the_block_shuts_down_and_runs_stopping() -> None:
    gate, seen = anyio.Event(), list[object]()
    gate.set()
    async with Supervisor(CONFIG, dead_letters=InMemoryDeadLetters()) as supervisor:
        ref = supervisor.spawn("recorder", lambda: Recorder(gate, seen))
        await ref.tell(7)
    assert seen == [7, "stopped"]
    with pytest.raises(ActorStopped):
        await ref.tell(8)
