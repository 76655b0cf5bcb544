"""The operator's admin routes on a running gateway: dead letters, replay, endpoint enable."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest
from delivery_receiver import (
    Answer,
    Receiver,
    answering,
    deliveries_for,
    outbound_toml,
    serving,
)
from gatewaykit import Partner, load, running, write_config

from canonical.delivery import DeliveryRecord
from gateway.app import Gateway
from gateway.store import DeadLetter, Store

pytestmark = pytest.mark.anyio

NO_BROKER = "amqp://guest:guest@127.0.0.1:9/"
FAIL: Answer = (500, {}, b"boom")
# Two fast retries, then a dead letter.
SCHEDULE = (0.05, 0.05)


@dataclass
class Env:
    gateway: Gateway
    admin: httpx.AsyncClient
    receiver: Receiver

    @property
    def store(self) -> Store:
        assert self.gateway.store is not None
        return self.gateway.store

    async def until(self, partner: str, wanted: str, deadline: float = 15) -> list[DeliveryRecord]:
        """Wait (bounded) until every delivery of `partner` is in state `wanted`; return them."""
        with anyio.fail_after(deadline):
            while True:
                found = await self.store.deliveries.deliveries(partner_id=partner)
                if found and {d.state for d in found} == {wanted}:
                    return found
                await anyio.sleep(0.02)

    async def dead_ones(self, aggregates: list[str]) -> list[DeliveryRecord]:
        """Commit deliveries to acme, let the failing receiver kill them, return them dead."""
        await self.store.accept(deliveries_for("acme", aggregates))
        self.gateway.outbound.wake("acme")  # type: ignore[union-attr]
        return await self.until("acme", "dead")

    async def letter_of(self, delivery: DeliveryRecord) -> DeadLetter:
        """The dead letter the couriers kept for `delivery`."""
        (letter,) = await self.store.dead_letters(message_id=delivery.message_id)
        return letter


@asynccontextmanager
async def admin_gateway(tmp_path: Path) -> AsyncIterator[Env]:
    receiver = Receiver(answering(then=FAIL))
    async with serving(receiver) as url:
        toml = outbound_toml(url, receiver.secret, SCHEDULE)
        config = load(write_config(tmp_path, NO_BROKER, [Partner("acme")], partner_extra=toml))
        async with running(config) as gateway:
            base = f"http://127.0.0.1:{gateway.admin_port}"
            async with httpx.AsyncClient(base_url=base, timeout=10) as admin:
                yield Env(gateway, admin, receiver)


async def test_replay_makes_a_dead_delivery_pending_and_the_receiver_gets_it_once(
    tmp_path: Path,
) -> None:
    async with admin_gateway(tmp_path) as env:
        (dead,) = await env.dead_ones(["PO-1"])
        env.receiver.script = answering()  # the partner recovers
        letter = await env.letter_of(dead)
        replayed = await env.admin.post("/dead-letters/replay", json={"id": letter.id})
        (delivered,) = await env.until("acme", "delivered")
        await anyio.sleep(0.3)  # room for a duplicate to show up, were there one
        left = await env.store.dead_letters()

    assert replayed.status_code == 200
    assert replayed.json() == {"replayed": 1, "still_dead": 0, "not_replayable": 0}
    assert left == []
    assert delivered.message_id == dead.message_id
    assert env.receiver.delivered() == [dead.message_id]


async def test_replay_by_filters_answers_how_many_were_replayed(tmp_path: Path) -> None:
    async with admin_gateway(tmp_path) as env:
        await env.dead_ones(["PO-1", "PO-2"])
        env.receiver.script = answering()
        replayed = await env.admin.post(
            "/dead-letters/replay", json={"partner": "acme", "since": "2000-01-01T00:00:00Z"}
        )
        await env.until("acme", "delivered")

    assert replayed.json()["replayed"] == 2


async def test_list_and_show_answer_the_dead_deliveries_as_json(tmp_path: Path) -> None:
    async with admin_gateway(tmp_path) as env:
        first, second = await env.dead_ones(["PO-1", "PO-2"])
        listed = await env.admin.get("/dead-letters", params={"partner": "acme", "limit": 1})
        rest = await env.admin.get("/dead-letters", params={"after": listed.json()["next"]})
        other = await env.admin.get("/dead-letters", params={"partner": "globex"})
        letter = await env.letter_of(second)
        shown = await env.admin.get(f"/dead-letters/{letter.id}")

    # Pages in the order the two died (their aggregates are delivered side by side).
    page_one = [d["message_id"] for d in listed.json()["dead_letters"]]
    page_two = [d["message_id"] for d in rest.json()["dead_letters"]]
    assert len(page_one) == len(page_two) == 1
    assert sorted(page_one + page_two) == sorted([first.message_id, second.message_id])
    assert rest.json()["dead_letters"][0]["source"] == "delivery:acme"
    assert other.json()["dead_letters"] == []
    assert shown.json()["message_id"] == second.message_id
    assert shown.json()["document_type"] == "purchase_order"
    attempts = shown.json()["detail"]["attempts"]
    assert [a["status"] for a in attempts] == [500] * (len(SCHEDULE) + 1)


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/dead-letters/12345", None, 404),
        ("GET", "/dead-letters/abc", None, 400),
        ("GET", "/dead-letters?since=yesterday", None, 400),
        ("POST", "/dead-letters/replay", {}, 400),
        ("POST", "/dead-letters/replay", {"id": 1, "partner": "acme"}, 400),
        ("POST", "/dead-letters/replay", {"ids": [1]}, 400),
        ("DELETE", "/dead-letters/1", None, 405),
        ("POST", "/endpoints/nobody/enable", {}, 404),
    ],
)
async def test_a_bad_operator_request_is_a_problem(
    tmp_path: Path, method: str, path: str, body: object, status: int
) -> None:
    async with admin_gateway(tmp_path) as env:
        answer = await env.admin.request(method, path, json=body)

    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("method", "path", "body", "name"),
    [
        ("GET", "/dead-letters?after=²", None, "after"),
        ("GET", "/dead-letters?limit=²", None, "limit"),
        ("GET", "/dead-letters/²", None, "id"),
        ("GET", f"/dead-letters/{2**63}", None, "id"),
        ("POST", "/dead-letters/replay", {"id": 2**63}, "id"),
    ],
    ids=["after-superscript", "limit-superscript", "id-superscript", "id-2^63", "replay-2^63"],
)
async def test_an_integer_out_of_reach_is_a_400_naming_the_parameter(
    tmp_path: Path, method: str, path: str, body: object, name: str
) -> None:
    async with admin_gateway(tmp_path) as env:
        answer = await env.admin.request(method, path, json=body)

    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    assert name in answer.json()["detail"]
    assert "sqlite" not in answer.text.lower()


async def test_enable_resumes_a_disabled_endpoint(tmp_path: Path) -> None:
    async with admin_gateway(tmp_path) as env:
        env.receiver.script = answering()
        await env.store.deliveries.disable_endpoint("acme", "410 Gone")
        await env.store.accept(deliveries_for("acme", ["PO-1"]))
        enabled = await env.admin.post("/endpoints/acme/enable", json={})
        (delivered,) = await env.until("acme", "delivered")
        again = await env.admin.post("/endpoints/acme/enable", json={})

    assert enabled.json() == {"partner": "acme", "was_disabled": True}
    assert env.receiver.delivered() == [delivered.message_id]
    assert again.json() == {"partner": "acme", "was_disabled": False}
