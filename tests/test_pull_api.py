"""The pull API on a running gateway: partners without webhooks fetch and acknowledge messages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import orjson
import pytest
from delivery_receiver import deliveries_for
from gatewaykit import Partner, client, load, running, write_config

from canonical.errors import ConfigError
from gateway.app import Gateway
from gateway.config import Secret

pytestmark = pytest.mark.anyio

# Nothing listens here: the relay keeps retrying in the background, which these tests ignore.
NO_BROKER = "amqp://guest:guest@127.0.0.1:9/"


class Puller:
    """A pulling partner: its id and bearer token."""

    def __init__(self, partner_id: str) -> None:
        self.partner = Partner(partner_id)
        self.token = Secret.generate().reveal()

    @property
    def id(self) -> str:
        return self.partner.id

    def toml(self) -> str:
        p = self.partner
        return (
            f'[[partners]]\nid = "{p.id}"\nname = "{p.id}"\nsecrets = ["{p.secret}"]\n'
            'receives = ["purchase_order"]\n'  # a partner that receives nothing is refused
            f'[partners.pull]\ntoken = "{self.token}"\nmax_batch = 50\n'
        )

    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}


ACME = Puller("acme")
GLOBEX = Puller("globex")


@asynccontextmanager
async def pull_gateway(tmp_path: Path) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    extra = "\n".join(p.toml() for p in (ACME, GLOBEX))
    config = load(write_config(tmp_path, NO_BROKER, [], extra=extra))
    async with running(config) as gateway, client(gateway) as http:
        yield gateway, http


async def seed(gateway: Gateway, partner: str, aggregates: list[str]) -> list[str]:
    """Commit one delivery per aggregate for `partner`; return their message ids in order."""
    assert gateway.store is not None
    acceptance = deliveries_for(partner, aggregates)
    await gateway.store.accept(acceptance)
    return [d.message_id for d in acceptance.deliveries]


async def pull(
    http: httpx.AsyncClient, puller: Puller, after: int = 0, limit: int = 10
) -> httpx.Response:
    return await http.get(
        f"/partners/{puller.id}/messages",
        params={"after": after, "limit": limit},
        headers=puller.auth(),
    )


async def test_pull_returns_the_partners_pending_messages_in_order(tmp_path: Path) -> None:
    async with pull_gateway(tmp_path) as (gateway, http):
        sent = await seed(gateway, "acme", ["PO-1", "PO-2", "PO-1"])
        answer = await pull(http, ACME)

    assert answer.status_code == 200
    messages = answer.json()["messages"]
    assert [m["message_id"] for m in messages] == sent
    assert [m["body"]["aggregate"] for m in messages] == ["PO-1", "PO-2", "PO-1"]
    assert messages[0]["document_type"] == "purchase_order"
    assert answer.json()["next"] == messages[-1]["cursor"]


async def test_pull_shows_a_partner_only_its_own_messages(tmp_path: Path) -> None:
    async with pull_gateway(tmp_path) as (gateway, http):
        await seed(gateway, "globex", ["PO-9"])
        mine = await seed(gateway, "acme", ["PO-1"])
        answer = await pull(http, ACME)

    assert [m["message_id"] for m in answer.json()["messages"]] == mine


async def test_pull_resumes_after_the_cursor_it_was_given(tmp_path: Path) -> None:
    async with pull_gateway(tmp_path) as (gateway, http):
        sent = await seed(gateway, "acme", ["PO-1", "PO-2", "PO-3", "PO-4"])
        first = (await pull(http, ACME, limit=2)).json()
        second = (await pull(http, ACME, after=first["next"], limit=2)).json()
        third = (await pull(http, ACME, after=second["next"], limit=2)).json()

    assert [m["message_id"] for m in first["messages"] + second["messages"]] == sent
    assert third == {"messages": [], "next": second["next"]}


@pytest.mark.parametrize("by", ["up_to", "message_ids"])
async def test_acknowledged_messages_are_not_pulled_again(tmp_path: Path, by: str) -> None:
    async with pull_gateway(tmp_path) as (gateway, http):
        sent = await seed(gateway, "acme", ["PO-1", "PO-2", "PO-3"])
        first_two = (await pull(http, ACME, limit=2)).json()
        ack = (
            {"up_to": first_two["next"]}
            if by == "up_to"
            else {"message_ids": [m["message_id"] for m in first_two["messages"]]}
        )
        acked = await http.post(f"/partners/{ACME.id}/messages/ack", json=ack, headers=ACME.auth())
        again = (await pull(http, ACME)).json()

    assert acked.status_code == 200
    assert acked.json() == {"acknowledged": 2}
    assert [m["message_id"] for m in again["messages"]] == sent[2:]


async def test_another_partners_token_is_refused_with_403(tmp_path: Path) -> None:
    async with pull_gateway(tmp_path) as (gateway, http):
        await seed(gateway, "acme", ["PO-1"])
        answer = await http.get(f"/partners/{ACME.id}/messages", headers=GLOBEX.auth())
        ack = await http.post(
            f"/partners/{ACME.id}/messages/ack", json={"up_to": 10**6}, headers=GLOBEX.auth()
        )
        still_there = (await pull(http, ACME)).json()

    assert answer.status_code == 403
    assert answer.headers["content-type"] == "application/problem+json"
    assert "PO-1" not in answer.text
    assert ack.status_code == 403
    assert len(still_there["messages"]) == 1


@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Bearer not-a-token"}, {"authorization": "Basic YWNtZTpzZWNyZXQ="}],
    ids=["missing", "unknown", "not-bearer"],
)
async def test_a_missing_or_unknown_token_is_refused_with_401(
    tmp_path: Path, headers: dict[str, str]
) -> None:
    async with pull_gateway(tmp_path) as (gateway, http):
        await seed(gateway, "acme", ["PO-1"])
        answer = await http.get(f"/partners/{ACME.id}/messages", headers=headers)

    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert orjson.loads(answer.content)["type"].endswith("/unauthenticated")


async def test_an_ack_without_cursor_or_ids_is_a_400_problem(tmp_path: Path) -> None:
    async with pull_gateway(tmp_path) as (_, http):
        answer = await http.post(f"/partners/{ACME.id}/messages/ack", json={}, headers=ACME.auth())

    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("method", "path", "params", "body", "name"),
    [
        ("GET", "messages", {"after": "²"}, None, "after"),
        ("GET", "messages", {"limit": "²"}, None, "limit"),
        ("GET", "messages", {"after": str(2**63)}, None, "after"),
        ("POST", "messages/ack", None, {"up_to": 2**63}, "up_to"),
        ("POST", "messages/ack", None, {"up_to": 2**64}, "up_to"),
    ],
    ids=["after-superscript", "limit-superscript", "after-2^63", "up_to-2^63", "up_to-2^64"],
)
async def test_an_integer_out_of_reach_is_a_400_naming_the_parameter(
    tmp_path: Path,
    method: str,
    path: str,
    params: dict[str, str] | None,
    body: object,
    name: str,
) -> None:
    async with pull_gateway(tmp_path) as (gateway, http):
        await seed(gateway, "acme", ["PO-1"])
        answer = await http.request(
            method, f"/partners/{ACME.id}/{path}", params=params, json=body, headers=ACME.auth()
        )
        still_there = (await pull(http, ACME)).json()

    problem = orjson.loads(answer.content)
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    assert name in problem["detail"]
    assert "sqlite" not in answer.text.lower()
    assert len(still_there["messages"]) == 1


async def test_a_problem_echoes_a_bounded_part_of_a_long_path(tmp_path: Path) -> None:
    long_path = f"/partners/{ACME.id}/" + "x" * 20_000  # within the 32 KiB head limit
    async with pull_gateway(tmp_path) as (_, http):
        answer = await http.get(long_path, headers=ACME.auth())

    problem = orjson.loads(answer.content)
    assert answer.status_code == 404
    assert long_path.startswith(problem["instance"])
    assert len(problem["instance"]) <= 256
    assert len(answer.content) < 1024


async def test_webhooks_are_still_served_beside_the_pull_api(tmp_path: Path) -> None:
    async with pull_gateway(tmp_path) as (_, http):
        answer = await http.post("/webhooks/nobody/purchase_order", content=b"{}")

    assert answer.status_code == 404
    assert answer.json()["type"].endswith("/unknown-partner")


def test_a_partner_with_both_outbound_and_pull_is_a_config_error(tmp_path: Path) -> None:
    both = (
        ACME.toml() + '[partners.outbound]\nurl = "https://hooks.example/in"\n'
        f'secret = "{Secret.generate().reveal()}"\n'
    )
    with pytest.raises(ConfigError) as raised:
        load(write_config(tmp_path, NO_BROKER, [], extra=both))

    assert any("pull" in e.message for e in raised.value.errors)
