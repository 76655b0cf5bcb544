"""The console's login and request rules on a running gateway's admin listener (plain HTTP)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from console_kit import TOKEN, console_gateway, csrf_of, logged_in

pytestmark = pytest.mark.anyio


async def test_without_a_session_a_page_sends_to_the_login_and_the_json_is_a_401(
    tmp_path: Path,
) -> None:
    async with console_gateway(tmp_path) as env, httpx.AsyncClient(base_url=env.base) as http:
        page = await http.get("/console/dead-letters")
        api = await http.get("/console/api/overview")
        replay = await http.post(
            "/console/api/dead-letters/replay", json={"id": 1}, headers={"x-console-csrf": "x"}
        )
        static = await http.get("/console/static/console.js")

    assert (page.status_code, page.headers["location"]) == (303, "/console/login")
    assert api.status_code == 401
    assert api.headers["content-type"] == "application/problem+json"
    assert replay.status_code == 401
    assert static.status_code == 200


async def test_the_login_takes_only_the_admin_token_and_sets_a_strict_httponly_cookie(
    tmp_path: Path,
) -> None:
    async with console_gateway(tmp_path) as env, httpx.AsyncClient(base_url=env.base) as http:
        wrong = await http.post("/console/login", data={"token": TOKEN + "x"})
        right = await http.post("/console/login", data={"token": TOKEN})
        overview = await http.get("/console/")

    assert wrong.status_code == 401
    assert "gw_console" not in wrong.headers.get("set-cookie", "")
    assert right.status_code == 303
    cookie = right.headers["set-cookie"]
    assert cookie.startswith("gw_console=")
    assert {"HttpOnly", "SameSite=Strict", "Path=/console"} <= {
        part.strip() for part in cookie.split(";")
    }
    assert overview.status_code == 200
    assert "frame-ancestors 'none'" in overview.headers["content-security-policy"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"x-console-csrf": ""}, 403),  # no CSRF token
        ({"x-console-csrf": "forged"}, 403),
        ({"origin": "http://evil.example"}, 403),
        ({"sec-fetch-site": "cross-site"}, 403),
        ({"content-type": "text/plain"}, 415),
    ],
    ids=["no-csrf", "forged-csrf", "foreign-origin", "cross-site-fetch", "not-json"],
)
async def test_an_action_without_the_pages_token_or_from_another_site_is_refused(
    tmp_path: Path, headers: dict[str, str], status: int
) -> None:
    async with console_gateway(tmp_path) as env:
        async with logged_in(env.base) as http:
            csrf = csrf_of((await http.get("/console/endpoints")).text)
            sent = {"content-type": "application/json", "x-console-csrf": csrf, **headers}
            sent = {k: v for k, v in sent.items() if v}  # "" leaves the header out
            answer = await http.post(
                "/console/api/endpoints/acme/disable", content=b"{}", headers=sent
            )
            disabled = await env.store.deliveries.endpoint_disabled("acme")

    assert answer.status_code == status
    assert not disabled


async def test_an_action_with_the_pages_token_from_the_same_origin_is_done(
    tmp_path: Path,
) -> None:
    async with console_gateway(tmp_path) as env:
        async with logged_in(env.base) as http:
            csrf = csrf_of((await http.get("/console/endpoints")).text)
            answer = await http.post(
                "/console/api/endpoints/acme/disable",
                json={},
                headers={"x-console-csrf": csrf, "origin": env.base},
            )
            disabled = await env.store.deliveries.endpoint_disabled("acme")

    assert answer.status_code == 200
    assert disabled


async def test_the_admin_api_keeps_refusing_browser_origins_and_cookies(tmp_path: Path) -> None:
    async with console_gateway(tmp_path) as env:
        async with logged_in(env.base) as http:
            with_cookie = await http.get("/dead-letters")
            with_origin = await http.get(
                "/dead-letters",
                headers={"authorization": f"Bearer {TOKEN}", "origin": env.base},
            )

    assert with_cookie.status_code == 401
    assert with_origin.status_code == 403


async def test_a_dead_letters_reason_is_shown_as_text_never_as_markup(tmp_path: Path) -> None:
    async with console_gateway(tmp_path) as env:
        await env.store.dead_letter(
            source="intake:acme",
            reason="<script>alert(1)</script>",
            detail="{}",
            payload=b"{}",
            partner_id="acme",
        )
        async with logged_in(env.base) as http:
            page = await http.get("/console/dead-letters")

    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
