"""One-for-one supervision: restarts, escalation, poison messages and the dead-letter sink."""

from __future__ import annotations

import anyio
import pytest

from actors.runtime import (
    Actor,
    Escalation,
    InMemoryDeadLetters,
    RuntimeConfig,
    Supervisor,
)
from canonical.errors import InvalidDocument, StoreUnavailable

pytestmark = pytest.mark.anyio


def config(*, max_restarts: int = 2, poison_threshold: int = 3) -> RuntimeConfig:
    return RuntimeConfig(
        max_restarts=max_restarts,
        poison_threshold=poison_threshold,
        restart_period_s=60.0,
        backoff_initial_s=0.001,
        backoff_max_s=0.002,
        shutdown_deadline_s=5.0,
    )


class Fragile(Actor[str, str]):
    """Crashes on any message starting with "poison"; echoes the rest and notes them."""

    def __init__(self, seen: list[str]) -> None:
        self.seen = seen

    async def receive(self, message: str) -> str:
        if message.startswith("poison"):
            raise ValueError(f"cannot handle {message}")
        self.seen.append(message)
        return message


async def test_a_crashed_actor_is_restarted_and_the_message_retried_on_the_new_instance() -> None:
    instances: list[str] = []

    class FailsOnce(Actor[str, str]):
        def __init__(self) -> None:
            instances.append("started")
            self.first = len(instances) == 1

        async def receive(self, message: str) -> str:
            if self.first:
                raise RuntimeError("first instance breaks")
            return f"handled {message}"

    async with Supervisor(config(), dead_letters=InMemoryDeadLetters()) as supervisor:
        ref = supervisor.spawn("flaky", FailsOnce)
        assert await ref.ask("order-1") == "handled order-1"
        assert supervisor.statistics().restarts == 1
    assert len(instances) == 2


async def test_an_error_the_actor_does_not_name_as_a_refusal_is_a_crash() -> None:
    instances: list[str] = []

    class NamesNothing(Actor[str, str]):
        def __init__(self) -> None:
            instances.append("started")
            self.first = len(instances) == 1

        async def receive(self, message: str) -> str:
            if self.first:
                raise InvalidDocument("a business error, but not one this actor answers with")
            return f"handled {message}"

    async with Supervisor(config(), dead_letters=InMemoryDeadLetters()) as supervisor:
        ref = supervisor.spawn("strict", NamesNothing)
        assert await ref.ask("order-1") == "handled order-1"
        assert supervisor.statistics().restarts == 1


async def test_repeated_crashes_within_the_period_escalate_to_the_parent() -> None:
    starts: list[int] = []

    class CannotStart(Actor[str, str]):
        async def started(self) -> None:
            starts.append(1)
            raise ConnectionError("partner endpoint unreachable")

        async def receive(self, message: str) -> str:
            return message

    escalation = pytest.RaisesExc(
        Escalation,
        match="crashed more than 2 times",
        check=lambda e: e.actor == "broken" and isinstance(e.error, ConnectionError),
    )
    with pytest.RaisesGroup(escalation):
        async with Supervisor(config(max_restarts=2), dead_letters=InMemoryDeadLetters()) as sup:
            sup.spawn("broken", CannotStart)
            await anyio.sleep_forever()
    assert len(starts) == 3  # the first start and two restarts; the third crash is one too many


async def test_a_poison_message_is_dead_lettered_and_the_next_messages_are_served() -> None:
    seen: list[str] = []
    dead = InMemoryDeadLetters()
    # The tightest budget the threshold allows: the poison message alone must not escalate.
    async with Supervisor(config(max_restarts=2, poison_threshold=3), dead_letters=dead) as sup:
        ref = sup.spawn("fragile", lambda: Fragile(seen))
        await ref.tell("poison-1")
        await ref.tell("order-1")
        assert await ref.ask("order-2") == "order-2"
        assert sup.statistics().dead_letters == 1
    assert seen == ["order-1", "order-2"]
    [letter] = dead.letters
    assert (letter.actor, letter.message) == ("fragile", "poison-1")
    assert letter.error_type == "builtins.ValueError"
    assert letter.error_text == "cannot handle poison-1"
    assert "raise ValueError" in letter.traceback


async def test_the_asker_of_a_poison_message_gets_its_error() -> None:
    async with Supervisor(config(), dead_letters=InMemoryDeadLetters()) as supervisor:
        ref = supervisor.spawn("fragile", lambda: Fragile([]))
        with pytest.raises(ValueError, match="cannot handle poison-1"):
            await ref.ask("poison-1")


async def test_a_run_of_poison_messages_escalates() -> None:
    dead = InMemoryDeadLetters()
    with pytest.RaisesGroup(pytest.RaisesExc(Escalation, check=lambda e: e.actor == "fragile")):
        async with Supervisor(config(max_restarts=2, poison_threshold=1), dead_letters=dead) as sup:
            ref = sup.spawn("fragile", lambda: Fragile([]))
            for n in range(3):
                await ref.tell(f"poison-{n}")
            await anyio.sleep_forever()
    assert [letter.message for letter in dead.letters] == ["poison-0", "poison-1", "poison-2"]


async def test_a_failing_dead_letter_sink_escalates() -> None:
    class BrokenStore:
        async def dead_letter(self, *, actor: str, message: object, error: BaseException) -> None:
            raise StoreUnavailable("disk full")

    class Refuses(Actor[str, str]):
        refusals = (InvalidDocument,)

        async def receive(self, message: str) -> str:
            raise InvalidDocument("not a purchase order")

    escalation = pytest.RaisesExc(Escalation, check=lambda e: isinstance(e.error, StoreUnavailable))
    with pytest.RaisesGroup(escalation):
        async with Supervisor(config(), dead_letters=BrokenStore()) as supervisor:
            await supervisor.spawn("refuses", Refuses).tell("garbage")
            await anyio.sleep_forever()


def test_a_poison_threshold_beyond_the_restart_budget_is_rejected() -> None:
    with pytest.raises(ValueError, match="poison_threshold"):
        RuntimeConfig(max_restarts=1, poison_threshold=3)
