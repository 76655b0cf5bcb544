"""Outbound delivery end to end: store -> courier -> egress -> a real receiver on loopback."""

from __future__ import annotations

from pathlib import Path

import anyio
import msgspec
import pytest
from delivery_receiver import FAST_SCHEDULE, Receiver, answering, deliveries_for, hang, outbound

pytestmark = pytest.mark.anyio

FAIL = (500, {}, b"boom")


async def test_endpoint_failing_its_first_calls_gets_the_message_after_that_many_retries(
    tmp_path: Path,
) -> None:
    receiver = Receiver(answering(FAIL, FAIL, FAIL))
    async with outbound(str(tmp_path / "gw.db"), {"acme": receiver}) as env:
        (message_id,) = await env.accept(deliveries_for("acme", ["PO-1"]))
        await env.until("acme", {"delivered"})
        (delivery,) = await env.store.deliveries.deliveries(partner_id="acme")
        attempts = await env.store.deliveries.attempts(delivery.id)

    assert [call.message_id for call in receiver.calls] == [message_id] * 4
    assert all(call.verified for call in receiver.calls)
    assert receiver.calls[0].host.startswith("localhost:")
    assert [a.status for a in attempts] == [500, 500, 500, 200]
    assert attempts[0].response_head == b"boom"


@pytest.mark.parametrize("status", [429, 503])
async def test_endpoint_asking_to_retry_after_two_seconds_is_not_called_again_before(
    tmp_path: Path, status: int
) -> None:
    receiver = Receiver(answering((status, {"retry-after": "2"}, b"slow down")))
    # One call at a time, so the second aggregate's message comes after the answer: the pause
    # holds for the endpoint, not only for the message that was answered.
    async with outbound(str(tmp_path / "gw.db"), {"acme": receiver}, concurrency=1) as env:
        await env.accept(deliveries_for("acme", ["PO-1", "PO-2"]))
        await env.until("acme", {"delivered"})

    first, *later = receiver.calls
    assert later
    assert all(call.at - first.at >= 2.0 for call in later)


async def test_endpoint_failing_forever_yields_a_dead_letter_with_every_attempt(
    tmp_path: Path,
) -> None:
    receiver = Receiver(answering(then=FAIL))
    # The circuit stays closed here: this is about the retry schedule running out.
    async with outbound(str(tmp_path / "gw.db"), {"acme": receiver}, breaker_failures=99) as env:
        (message_id,) = await env.accept(deliveries_for("acme", ["PO-1"]))
        await env.until("acme", {"dead"})
        (letter,) = await env.store.dead_letters(source="delivery:acme")

    detail = msgspec.json.decode(letter.detail)
    assert letter.message_id == message_id
    assert letter.partner_id == "acme"
    assert [a["status"] for a in detail["attempts"]] == [500] * (len(FAST_SCHEDULE) + 1)
    assert len(receiver.calls) == len(FAST_SCHEDULE) + 1


async def test_replay_after_recovery_delivers_the_same_message_id_once(tmp_path: Path) -> None:
    receiver = Receiver(answering(then=FAIL))
    # The circuit stays closed here: this is about the retry schedule running out.
    async with outbound(str(tmp_path / "gw.db"), {"acme": receiver}, breaker_failures=99) as env:
        (message_id,) = await env.accept(deliveries_for("acme", ["PO-1"]))
        await env.until("acme", {"dead"})
        receiver.script = answering()  # the partner recovers
        (dead,) = await env.store.deliveries.deliveries(partner_id="acme", state="dead")
        assert await env.store.deliveries.replay_delivery(dead.id)
        env.delivery.wake("acme")
        await env.until("acme", {"delivered"})

    assert receiver.delivered() == [message_id]


async def test_gone_endpoint_is_disabled_and_enabling_it_delivers_the_backlog_in_order(
    tmp_path: Path,
) -> None:
    receiver = Receiver(answering(then=(410, {}, b"gone")))
    async with outbound(str(tmp_path / "gw.db"), {"acme": receiver}) as env:
        ids = await env.accept(deliveries_for("acme", ["PO-1"] * 5))
        with anyio.fail_after(10):
            while not await env.store.deliveries.endpoint_disabled("acme"):
                await anyio.sleep(0.02)
        calls_when_disabled = len(receiver.calls)
        await anyio.sleep(0.3)  # several courier passes while disabled
        calls_while_disabled = len(receiver.calls) - calls_when_disabled
        states_while_disabled = await env.states("acme")

        receiver.script = answering()
        assert await env.store.deliveries.enable_endpoint("acme")
        env.delivery.wake("acme")
        await env.until("acme", {"delivered"})
        letters = await env.store.dead_letters()

    assert calls_while_disabled == 0
    assert states_while_disabled == ["pending"] * 5
    assert receiver.delivered() == ids
    assert letters == []


async def test_a_hanging_partner_does_not_hold_up_another(tmp_path: Path) -> None:
    slow, fast = Receiver(hang), Receiver(answering())
    async with outbound(
        str(tmp_path / "gw.db"), {"slow": slow, "fast": fast}, timeout_s=60.0, concurrency=2
    ) as env:
        await env.accept(deliveries_for("slow", [f"PO-{n}" for n in range(10)]))
        with anyio.fail_after(10):
            while len(slow.calls) < 2:
                await anyio.sleep(0.02)
        fast_ids = await env.accept(deliveries_for("fast", [f"PO-{n}" for n in range(20)]))
        await env.until("fast", {"delivered"})
        slow_states = await env.states("slow")

    assert sorted(fast.delivered()) == sorted(fast_ids)
    assert slow_states == ["pending"] * 10
    assert len(slow.calls) == 2  # its concurrency, all hanging


async def test_different_aggregates_proceed_while_one_waits_for_its_retry(tmp_path: Path) -> None:
    async def script(n: int) -> tuple[int, dict[str, str], bytes]:
        return FAIL if n == 1 else (200, {}, b"ok")

    receiver = Receiver(script)
    async with outbound(
        str(tmp_path / "gw.db"), {"acme": receiver}, retry_schedule_s=(1.0,), concurrency=1
    ) as env:
        first, second = await env.accept(deliveries_for("acme", ["PO-1", "PO-2"]))
        await env.until("acme", {"delivered"})

    # PO-1 failed once and waited a second for its retry; PO-2 did not wait behind it.
    assert receiver.delivered() == [second, first]


async def test_open_circuit_stops_calls_to_a_failing_endpoint(tmp_path: Path) -> None:
    receiver = Receiver(answering(then=FAIL))
    async with outbound(
        str(tmp_path / "gw.db"),
        {"acme": receiver},
        breaker_failures=2,
        breaker_cooldown_s=60.0,
        concurrency=1,
    ) as env:
        await env.accept(deliveries_for("acme", [f"PO-{n}" for n in range(5)]))
        with anyio.fail_after(10):
            while len(receiver.calls) < 2:
                await anyio.sleep(0.02)
        await anyio.sleep(0.5)  # many courier passes, all past the retry schedule's waits
        stats = env.delivery.statistics()["acme"]

    assert len(receiver.calls) == 2
    assert stats.breaker == "open"


async def test_partner_rate_limit_spaces_its_calls(tmp_path: Path) -> None:
    receiver = Receiver(answering())
    # 5 calls a second, no burst beyond one: six messages of six aggregates (free to go at
    # once, concurrency permitting) still reach the partner at least ~0.2 s apart.
    async with outbound(
        str(tmp_path / "gw.db"),
        {"acme": receiver},
        rate_per_second=5.0,
        burst=1,
        concurrency=8,
    ) as env:
        await env.accept(deliveries_for("acme", [f"PO-{n}" for n in range(6)]))
        await env.until("acme", {"delivered"})
        deliveries = await env.store.deliveries.deliveries(partner_id="acme")
        attempts = [a for d in deliveries for a in await env.store.deliveries.attempts(d.id)]

    # When each attempt started, as the courier recorded it: arrival times at the receiver
    # also carry each call's own connection set-up, which shrank the span under load.
    times = sorted(a.attempted_at for a in attempts)
    assert len(times) == len(receiver.calls) == 6
    # The bucket refills 5 tokens/s: six calls span at least a second (one token at the start).
    assert times[-1] - times[0] >= 0.95


@pytest.mark.parametrize(
    "retry_after",
    [
        "²",  # str.isdigit() says yes, float() says no: it crashed the courier on every attempt
        "①",
        "9" * 400,
        "-5",
        "Fri, 31 Dec 9999 23:59:59 GMT",
        "Mon, 01 Jan 99999999999 00:00:00 GMT",
        "Wed, 21 Oct 2015 07:28:00 GMT",
    ],
)
async def test_a_malformed_retry_after_is_recorded_and_the_message_delivered_later(
    tmp_path: Path, retry_after: str
) -> None:
    receiver = Receiver(answering((503, {"retry-after": retry_after}, b"busy")))
    # A wait the partner asks for is capped by max_retry_after_s: far-future asks end soon.
    async with outbound(str(tmp_path / "gw.db"), {"acme": receiver}, max_retry_after_s=0.2) as env:
        (message_id,) = await env.accept(deliveries_for("acme", ["PO-1"]))
        await env.until("acme", {"delivered"})
        (delivery,) = await env.store.deliveries.deliveries(partner_id="acme")
        attempts = await env.store.deliveries.attempts(delivery.id)

    assert [a.status for a in attempts] == [503, 200]
    assert attempts[0].response_head == b"busy"
    assert receiver.delivered() == [message_id]
    assert env.delivery.restarts == 0


async def test_a_target_the_egress_guard_refuses_is_dead_lettered_at_once_with_the_reason(
    tmp_path: Path,
) -> None:
    receiver = Receiver(answering())
    # The receiver listens on loopback, which this partner is not allowed to reach. A long
    # schedule: a refusal retried on it would stay pending past the test's deadline.
    async with outbound(
        str(tmp_path / "gw.db"),
        {"acme": receiver},
        allow_networks=(),
        retry_schedule_s=(3600.0,),
    ) as env:
        (message_id,) = await env.accept(deliveries_for("acme", ["PO-1"]))
        await env.until("acme", {"dead"}, deadline=10)
        (letter,) = await env.store.dead_letters(source="delivery:acme")

    detail = msgspec.json.decode(letter.detail)
    assert letter.message_id == message_id
    assert "not a public address" in letter.reason
    assert "retries spent" not in letter.reason
    assert [a["status"] for a in detail["attempts"]] == [None]
    assert receiver.calls == []
