"""The admin listener refuses browsers and strangers: Host allow-list, Origin, JSON, bearer token.

Against a running gateway over real sockets: what a DNS-rebinding page, a cross-site form and
an operator's curl each get back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from delivery_receiver import deliveries_for
from gatewaykit import Partner, load, running, write_config

from canonical.delivery import DeliveryAttempt
from gateway.app import Gateway
from gateway.cli import main
from gateway.config import Secret
from gateway.store import Store

pytestmark = pytest.mark.anyio

NO_BROKER = "amqp://guest:guest@127.0.0.1:9/"
TOKEN = Secret.generate().reveal()


@asynccontextmanager
async def admin_of(
    tmp_path: Path, admin: str = ""
) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    """A gateway whose store holds one dead delivery for acme, and a client for its admin port."""
    path = with_admin(tmp_path, admin)
    async with running(load(path)) as gateway:
        assert gateway.store is not None
        await bury_one(gateway.store)
        base = f"http://127.0.0.1:{gateway.admin_port}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            yield gateway, http


def with_admin(folder: Path, admin_keys: str) -> Path:
    """A config file for acme whose [admin] table also holds `admin_keys`."""
    path = write_config(folder, NO_BROKER, [Partner("acme")])
    path.write_text(path.read_text().replace("[admin]\n", f"[admin]\n{admin_keys}\n", 1))
    return path


async def bury_one(store: Store) -> None:
    await store.accept(deliveries_for("acme", ["PO-1"]))
    (delivery,) = await store.deliveries.deliveries(partner_id="acme")
    attempt = DeliveryAttempt(attempted_at=delivery.created_at, status=500, latency_s=0.01)
    await store.deliveries.settle(delivery.id, attempt, "dead", reason="HTTP 500")


async def dead_states(gateway: Gateway) -> set[str]:
    assert gateway.store is not None
    return {d.state for d in await gateway.store.deliveries.deliveries(partner_id="acme")}


@pytest.mark.parametrize("path", ["/dead-letters", "/metrics"])
async def test_a_dns_rebinding_page_cannot_read_dead_letters_or_metrics(
    tmp_path: Path, path: str
) -> None:
    async with admin_of(tmp_path) as (_, http):
        rebound = await http.get(path, headers={"host": "evil.example:9090"})
        direct = await http.get(path)

    assert rebound.status_code == 421
    assert rebound.headers["content-type"] == "application/problem+json"
    assert rebound.json()["type"].endswith("/misdirected-request")
    assert "gateway_" not in rebound.text
    assert "acme" not in rebound.text
    assert direct.status_code == 200


async def test_a_host_name_the_operator_listed_is_served(tmp_path: Path) -> None:
    listed = 'allowed_hosts = ["gateway-admin.internal"]'
    async with admin_of(tmp_path, listed) as (_, http):
        named = await http.get("/dead-letters", headers={"host": "gateway-admin.internal:9090"})
        local = await http.get("/dead-letters", headers={"host": "localhost"})

    assert named.status_code == 200
    assert local.status_code == 200


async def test_a_cross_site_text_plain_post_neither_replays_nor_enables(tmp_path: Path) -> None:
    form = {"content-type": "text/plain"}
    async with admin_of(tmp_path) as (gateway, http):
        assert gateway.store is not None
        await gateway.store.deliveries.disable_endpoint("acme", "410 Gone")
        replay = await http.post(
            "/dead-letters/replay", content=b'{"partner":"acme"}', headers=form
        )
        enable = await http.post("/endpoints/acme/enable", content=b"{}", headers=form)
        states = await dead_states(gateway)
        disabled = await gateway.store.deliveries.endpoint_disabled("acme")

    assert (replay.status_code, enable.status_code) == (415, 415)
    assert replay.headers["content-type"] == "application/problem+json"
    assert states == {"dead"}
    assert disabled


async def test_a_request_carrying_an_origin_is_refused(tmp_path: Path) -> None:
    async with admin_of(tmp_path) as (gateway, http):
        replay = await http.post(
            "/dead-letters/replay",
            json={"partner": "acme"},
            headers={"origin": "https://evil.example"},
        )
        read = await http.get("/dead-letters", headers={"origin": "null"})
        states = await dead_states(gateway)

    assert (replay.status_code, read.status_code) == (403, 403)
    assert "acme" not in read.text
    assert states == {"dead"}


async def test_with_a_token_every_route_but_the_probes_needs_it(tmp_path: Path) -> None:
    async with admin_of(tmp_path, f'token = "{TOKEN}"') as (_, http):
        without = [(await http.get(p)).status_code for p in ("/dead-letters", "/metrics")]
        wrong = await http.get("/dead-letters", headers={"authorization": f"Bearer {TOKEN}x"})
        right = await http.get("/dead-letters", headers={"authorization": f"Bearer {TOKEN}"})
        healthz = await http.get("/healthz")
        readyz = await http.get("/readyz")

    assert without == [401, 401]
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == "Bearer"
    assert right.status_code == 200
    assert healthz.status_code == 200
    assert readyz.status_code in (200, 503)  # no broker here: 503, but never 401
    assert "checks" in readyz.json()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "admin.internal"])
def test_config_check_refuses_an_admin_bind_off_loopback_without_a_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], host: str
) -> None:
    path = with_admin(tmp_path, f'host = "{host}"')

    code = main(["config", "check", str(path)])

    _, err = capsys.readouterr()
    assert code == 1
    assert "[admin]: token: required when host is not a loopback address" in err


def test_config_check_takes_an_admin_bind_off_loopback_with_a_token_reference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_ADMIN_TOKEN", TOKEN)
    path = with_admin(tmp_path, 'host = "0.0.0.0"\ntoken = { env = "GATEWAY_ADMIN_TOKEN" }')

    code = main(["config", "check", str(path)])

    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert TOKEN not in out
