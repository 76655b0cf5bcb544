"""Mailboxes and references: backpressure, tell_nowait, ask, and business errors as answers."""

from __future__ import annotations

import anyio
import pytest

from actors.runtime import (
    Actor,
    AskTimeout,
    InMemoryDeadLetters,
    MailboxFull,
    RuntimeConfig,
    Supervisor,
)
from canonical.errors import FieldError, InvalidDocument

pytestmark = pytest.mark.anyio

CONFIG = RuntimeConfig(
    mailbox_size=2, backoff_initial_s=0.001, backoff_max_s=0.002, shutdown_deadline_s=5.0
)


class Gated(Actor[int, int]):
    """Holds message 0 until the gate opens; notes every message it handles."""

    def __init__(self, gate: anyio.Event, seen: list[object]) -> None:
        self.gate = gate
        self.seen = seen

    async def receive(self, message: int) -> int:
        if message == 0:
            await self.gate.wait()
        self.seen.append(message)
        return message


class Quantities(Actor[int, int]):
    """Doubles a quantity; refuses a negative one as an invalid document."""

    refusals = (InvalidDocument,)

    instances = 0

    def __init__(self) -> None:
        Quantities.instances += 1

    async def receive(self, message: int) -> int:
        if message < 0:
            raise InvalidDocument(
                "quantity must not be negative",
                errors=[FieldError("$.lines[0].quantity", "Expected >= 0")],
            )
        return message * 2


async def test_a_full_mailbox_makes_the_sender_wait_and_depth_stays_within_the_bound() -> None:
    gate, seen, sent, depths = anyio.Event(), list[object](), list[int](), list[int]()

    class Probing(Gated):
        async def receive(self, message: int) -> int:
            depths.append(ref.statistics().depth)
            return await super().receive(message)

    async with Supervisor(CONFIG, dead_letters=InMemoryDeadLetters()) as supervisor:
        ref = supervisor.spawn("gated", lambda: Probing(gate, seen))

        async def send_ten() -> None:
            for n in range(10):
                await ref.tell(n)
                sent.append(n)

        async with anyio.create_task_group() as senders:
            senders.start_soon(send_ten)
            await anyio.wait_all_tasks_blocked()
            # One message in hand, two queued, the fourth tell waits for space.
            assert sent == [0, 1, 2]
            stats = ref.statistics()
            assert (stats.depth, stats.max_size, stats.waiting_senders) == (2, 2, 1)
            gate.set()

    assert sent == seen == list(range(10))
    assert max(depths) <= 2


async def test_tell_nowait_raises_mailbox_full_instead_of_waiting() -> None:
    gate, seen = anyio.Event(), list[object]()
    async with Supervisor(CONFIG, dead_letters=InMemoryDeadLetters()) as supervisor:
        ref = supervisor.spawn("gated", lambda: Gated(gate, seen))
        await ref.tell(0)
        await anyio.wait_all_tasks_blocked()
        ref.tell_nowait(1)
        ref.tell_nowait(2)
        with pytest.raises(MailboxFull, match="gated"):
            ref.tell_nowait(3)
        assert ref.statistics().depth == 2
        gate.set()
    assert seen == [0, 1, 2]


async def test_ask_raises_ask_timeout_when_the_actor_does_not_answer_in_time() -> None:
    gate = anyio.Event()
    async with Supervisor(CONFIG, dead_letters=InMemoryDeadLetters()) as supervisor:
        ref = supervisor.spawn("gated", lambda: Gated(gate, []))
        with pytest.raises(AskTimeout, match=r"did not answer within 0\.01 s"):
            await ref.ask(0, timeout=0.01)
        gate.set()


async def test_ask_returns_the_actors_answer() -> None:
    async with Supervisor(CONFIG, dead_letters=InMemoryDeadLetters()) as supervisor:
        ref = supervisor.spawn("quantities", Quantities)
        assert await ref.ask(21) == 42


async def test_a_gateway_error_from_receive_reaches_the_asker_without_a_restart() -> None:
    Quantities.instances = 0
    async with Supervisor(CONFIG, dead_letters=InMemoryDeadLetters()) as supervisor:
        ref = supervisor.spawn("quantities", Quantities)
        with pytest.raises(InvalidDocument) as refused:
            await ref.ask(-1)
        assert refused.value.errors == (("$.lines[0].quantity", "Expected >= 0"),)
        assert await ref.ask(2) == 4
        assert supervisor.statistics().restarts == 0
    assert Quantities.instances == 1


async def test_a_gateway_error_for_a_told_message_is_dead_lettered_and_serving_goes_on() -> None:
    dead = InMemoryDeadLetters()
    async with Supervisor(CONFIG, dead_letters=dead) as supervisor:
        ref = supervisor.spawn("quantities", Quantities)
        await ref.tell(-1)
        assert await ref.ask(3) == 6
        assert supervisor.statistics().restarts == 0
    [letter] = dead.letters
    assert (letter.actor, letter.message) == ("quantities", -1)
    assert letter.error_type == "canonical.errors.InvalidDocument"
