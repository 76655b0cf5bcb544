"""The console's pages over plain HTTP: filters, paging and the searches with no thread."""

from __future__ import annotations

from pathlib import Path

import pytest
from console_kit import SCHEDULE, console_gateway, delivery_of, logged_in, seed_thread

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("query", "listed"),
    [
        ("", True),
        ("?kind=rejected_line", True),
        ("?kind=late_asn", False),
        ("?partner=globex", False),
    ],
    ids=["all", "its-kind", "another-kind", "another-partner"],
)
async def test_open_exceptions_are_listed_by_kind_and_partner_with_a_link_to_the_thread(
    tmp_path: Path, query: str, listed: bool
) -> None:
    async with console_gateway(tmp_path) as env:
        await seed_thread(env.store, "PO-9", "corr-9")
        (thread,) = await env.store.workflow.threads_of_order("PO-9")
        async with logged_in(env.base) as http:
            page = await http.get(f"/console/exceptions{query}")

    assert page.status_code == 200
    assert (f'href="/console/threads/{thread.id}"' in page.text) is listed
    assert ("beyond the 5 % tolerance" in page.text) is listed


async def test_dead_letters_page_on_and_filter_by_source(tmp_path: Path) -> None:
    async with console_gateway(tmp_path) as env:
        for n in range(3):
            await env.store.dead_letter(
                source="intake:acme" if n < 2 else "intake:globex",
                reason=f"refused {n}",
                detail="{}",
                payload=b"{}",
                partner_id="acme" if n < 2 else "globex",
            )
        async with logged_in(env.base) as http:
            acme = await http.get("/console/dead-letters", params={"partner": "acme"})
            globex = await http.get("/console/dead-letters", params={"source": "intake:globex"})
            bad = await http.get("/console/dead-letters", params={"since": "yesterday"})

    assert "refused 0" in acme.text
    assert "refused 1" in acme.text
    assert "refused 2" not in acme.text
    assert "refused 2" in globex.text
    assert "refused 0" not in globex.text
    assert bad.status_code == 400
    assert bad.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("text", ["ACME_850_0001.edi", "000000905", "no-such-thing"])
async def test_a_search_that_finds_no_thread_says_so(tmp_path: Path, text: str) -> None:
    async with console_gateway(tmp_path) as env, logged_in(env.base) as http:
        page = await http.get("/console/search", params={"q": text})

    assert page.status_code == 200
    assert "no thread" in page.text


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/console/threads/999", 404),
        ("/console/threads/abc", 400),
        ("/console/dead-letters/999", 404),
        ("/console/deliveries", 400),
        ("/console/nowhere", 404),
        ("/console/api/endpoints/nobody/disable", 405),
    ],
)
async def test_a_page_that_does_not_exist_is_a_problem_not_a_crash(
    tmp_path: Path, path: str, status: int
) -> None:
    async with console_gateway(tmp_path) as env, logged_in(env.base) as http:
        answer = await http.get(path)

    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"


async def test_a_threads_page_lists_the_attempts_to_deliver_its_messages(tmp_path: Path) -> None:
    async with console_gateway(tmp_path) as env:
        await seed_thread(env.store, "PO-9", "corr-9")
        # The exception event of the thread goes to acme, whose endpoint answers 500.
        await env.store.accept(delivery_of("acme", "exc-event-1"))
        env.wake("acme")
        await env.until("acme", "dead")
        (thread,) = await env.store.workflow.threads_of_order("PO-9")
        async with logged_in(env.base) as http:
            page = await http.get(f"/console/threads/{thread.id}")

    assert page.text.count("HTTP 500") == len(SCHEDULE) + 1
    assert "exception -&gt; acme endpoint" in page.text
