"""The store's side of delivery: kept with the acceptance, heads per aggregate, dead, replay."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from delivery_receiver import deliveries_for

from canonical.delivery import DeliveryAttempt
from gateway.store import Store

pytestmark = pytest.mark.anyio


def failed(at: float = 1.0, status: int = 500) -> DeliveryAttempt:
    return DeliveryAttempt(attempted_at=at, status=status, latency_s=0.01, response_head=b"no")


async def test_deliveries_are_kept_with_their_acceptance_and_due_at_once(tmp_path: Path) -> None:
    sample = deliveries_for("acme", ["PO-1", "PO-2"])
    async with Store(tmp_path / "gw.db", clock=lambda: 100.0) as store:
        await store.accept(sample)
        await store.accept(sample)  # a replay of the same request keeps nothing new
        kept = await store.deliveries.deliveries(partner_id="acme")

    assert [d.message_id for d in kept] == [d.message_id for d in sample.deliveries]
    assert {(d.state, d.attempts, d.next_attempt_at) for d in kept} == {("pending", 0, 100.0)}


async def test_only_the_oldest_pending_delivery_of_each_aggregate_is_a_head(
    tmp_path: Path,
) -> None:
    async with Store(tmp_path / "gw.db") as store:
        await store.accept(deliveries_for("acme", ["PO-1", "PO-1", "PO-2"]))
        first, second, other = await store.deliveries.deliveries(partner_id="acme")
        before = await store.deliveries.heads("acme", 10)
        await store.deliveries.settle(first.id, failed(status=200), "delivered")
        after = await store.deliveries.heads("acme", 10)

    assert {d.id for d in before} == {first.id, other.id}
    assert {d.id for d in after} == {second.id, other.id}


async def test_a_dead_delivery_keeps_a_dead_letter_with_every_attempt(tmp_path: Path) -> None:
    async with Store(tmp_path / "gw.db") as store:
        await store.accept(deliveries_for("acme", ["PO-1"]))
        (delivery,) = await store.deliveries.deliveries(partner_id="acme")
        await store.deliveries.settle(delivery.id, failed(1.0), "retry", next_attempt_at=5.0)
        await store.deliveries.settle(delivery.id, failed(5.0), "dead", reason="HTTP 500")
        (letter,) = await store.dead_letters()
        (dead,) = await store.deliveries.deliveries(partner_id="acme")

    attempts = msgspec.json.decode(letter.detail)["attempts"]
    assert (letter.source, letter.message_id, letter.reason) == (
        "delivery:acme",
        delivery.message_id,
        "HTTP 500",
    )
    assert letter.payload == delivery.body
    assert [(a["attempted_at"], a["status"], a["response_head"]) for a in attempts] == [
        (1.0, 500, "no"),
        (5.0, 500, "no"),
    ]
    assert (dead.state, dead.attempts) == ("dead", 2)


async def test_replay_makes_a_dead_delivery_pending_again_with_its_message_id(
    tmp_path: Path,
) -> None:
    async with Store(tmp_path / "gw.db") as store:
        await store.accept(deliveries_for("acme", ["PO-1"]))
        (delivery,) = await store.deliveries.deliveries(partner_id="acme")
        not_dead = await store.deliveries.replay_delivery(delivery.id)
        await store.deliveries.settle(delivery.id, failed(), "dead", reason="HTTP 500")
        replayed = await store.deliveries.replay_delivery(delivery.id)
        (again,) = await store.deliveries.deliveries(partner_id="acme")

    assert (not_dead, replayed) == (False, True)
    assert (again.state, again.attempts, again.message_id) == ("pending", 0, delivery.message_id)


async def test_a_replayed_delivery_leaves_no_dead_letter_behind(tmp_path: Path) -> None:
    async with Store(tmp_path / "gw.db") as store:
        await store.accept(deliveries_for("acme", ["PO-1", "PO-2"]))
        first, second = await store.deliveries.deliveries(partner_id="acme")
        for delivery in (first, second):
            await store.deliveries.settle(delivery.id, failed(), "dead", reason="HTTP 500")
        await store.deliveries.replay_delivery(first.id)
        await store.deliveries.settle(first.id, failed(), "dead", reason="HTTP 503")
        await store.deliveries.replay_deliveries(partner_id="acme")
        left = await store.dead_letters()
        pending = await store.deliveries.deliveries(state="pending")

    assert left == []
    assert {d.id for d in pending} == {first.id, second.id}


async def test_bulk_replay_takes_only_the_dead_deliveries_matching_every_filter(
    tmp_path: Path,
) -> None:
    clock = [100.0]
    async with Store(tmp_path / "gw.db", clock=lambda: clock[0]) as store:
        await store.accept(deliveries_for("acme", ["PO-1", "PO-2"]))
        await store.accept(deliveries_for("globex", ["PO-9"]))
        early, late = await store.deliveries.deliveries(partner_id="acme")
        (other,) = await store.deliveries.deliveries(partner_id="globex")
        for delivery, died_at in ((early, 100.0), (late, 200.0), (other, 200.0)):
            clock[0] = died_at
            await store.deliveries.settle(delivery.id, failed(), "dead", reason="HTTP 500")
        count = await store.deliveries.replay_deliveries(partner_id="acme", since=150.0)
        pending = await store.deliveries.deliveries(state="pending")

    assert count == 1
    assert [d.id for d in pending] == [late.id]


async def test_enabling_a_disabled_endpoint_makes_its_backlog_due_now(tmp_path: Path) -> None:
    clock = [100.0]
    async with Store(tmp_path / "gw.db", clock=lambda: clock[0]) as store:
        await store.accept(deliveries_for("acme", ["PO-1"]))
        (delivery,) = await store.deliveries.deliveries(partner_id="acme")
        await store.deliveries.settle(delivery.id, failed(), "retry", next_attempt_at=9999.0)
        not_disabled = await store.deliveries.enable_endpoint("acme")
        await store.deliveries.disable_endpoint("acme", "410 Gone")
        disabled = await store.deliveries.endpoint_disabled("acme")
        clock[0] = 200.0
        enabled = await store.deliveries.enable_endpoint("acme")
        (due,) = await store.deliveries.heads("acme", 10)

    assert (not_disabled, disabled, enabled) == (False, True, True)
    assert due.next_attempt_at == 200.0
