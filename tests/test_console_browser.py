"""The console driven in headless Chromium against a running gateway: what an operator does.

Each test logs in through the form, acts as an operator would (search box, buttons, the
confirmation dialogs accepted) and checks what the page shows and what the gateway did; each
leaves a screenshot in tests/artifacts/console/.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from console_kit import THREAD_INPUTS, browser_page, console_gateway, seed_thread, shot
from delivery_receiver import answering, deliveries_for

pytestmark = pytest.mark.anyio


async def test_a_po_found_by_its_number_shows_its_whole_thread(tmp_path: Path) -> None:
    async with console_gateway(tmp_path) as env:
        await seed_thread(env.store, "PO-4711", "corr-4711")
        async with browser_page(env.base) as page:
            await page.fill("#search", "PO-4711")
            await page.press("#search", "Enter")
            await page.click("#threads a[data-thread]")
            await page.wait_for_selector("#journal")
            await shot(page, "thread")
            journal = await page.locator("#journal tbody tr").all_inner_texts()
            exceptions = await page.inner_text("#exceptions")
            timers = await page.inner_text("#timers")
            # The same thread by a message id (of an outbox row: every document accepted
            # and every event is one) and by the correlation id.
            await page.fill("#search", "exc-event-1")
            await page.press("#search", "Enter")
            by_message = await page.inner_text("#threads")
            await page.fill("#search", "corr-4711")
            await page.press("#search", "Enter")
            by_correlation = await page.inner_text("#threads")
            # The open exception, listed by kind, links to its thread.
            await page.click("header nav >> text=Exceptions")
            await shot(page, "exceptions")
            await page.click("#open-exceptions a:has-text('PO-4711')")
            linked = await page.inner_text("h1")

    inputs = [message_id for message_id, *_ in THREAD_INPUTS]
    shown = [next((m for m in [*inputs, "exc-event-1"] if m in row), row) for row in journal]
    assert shown == ["po-msg-1", "ack-msg-1", "exc-event-1", "asn-msg-1"]
    assert "purchase_order_ack -> exception" in journal[2]
    assert "rejected_line" in exceptions
    assert "receipt_due" in timers
    assert "PO-4711" in by_message
    assert "PO-4711" in by_correlation
    assert linked == "PO PO-4711 (acme)"


async def test_a_dead_letter_replayed_from_the_console_is_delivered(tmp_path: Path) -> None:
    async with console_gateway(tmp_path) as env:
        dead = await env.dead_one("PO-1")
        env.receiver.script = answering()  # the partner recovers
        async with browser_page(env.base) as page:
            await page.goto(env.base + "/console/dead-letters?partner=acme")
            await shot(page, "dead-letters")
            row = page.locator("#dead-letters tbody tr", has_text=dead.message_id)
            await row.locator("button", has_text="Replay").click()
            await page.wait_for_selector("#dead-letters tr.empty")  # reloaded, gone
            (delivered,) = await env.until("acme", "delivered")
            await page.goto(
                env.base + f"/console/deliveries?partner=acme&message_id={dead.message_id}"
            )
            await shot(page, "deliveries")
            state = await page.inner_text("#deliveries tbody tr")

    assert delivered.message_id == dead.message_id
    assert env.receiver.delivered() == [dead.message_id]
    assert "delivered" in state


async def test_a_disabled_endpoint_enabled_from_the_console_delivers_again(
    tmp_path: Path,
) -> None:
    async with console_gateway(tmp_path) as env:
        env.receiver.script = answering()
        await env.store.deliveries.disable_endpoint("acme", "410 Gone")
        await env.store.accept(deliveries_for("acme", ["PO-1"]))
        async with browser_page(env.base) as page:
            await page.goto(env.base + "/console/endpoints")
            row = page.locator("#endpoints tbody tr", has_text="acme")
            before = await row.inner_text()
            await shot(page, "endpoints")
            await row.locator("button[data-partner=acme]").click()
            await page.wait_for_selector("#endpoints tr:has-text('acme') .state-up")
            after = await row.inner_text()
            (delivered,) = await env.until("acme", "delivered")

    assert "disabled" in before
    assert "410 Gone" in before
    assert "enabled" in after
    assert env.receiver.delivered() == [delivered.message_id]


async def test_the_overview_updates_without_a_reload(tmp_path: Path) -> None:
    async with console_gateway(tmp_path) as env:
        async with browser_page(env.base) as page:
            backlog = page.locator("#partners tbody tr", has_text="acme").locator("td").nth(3)
            assert await backlog.inner_text() == "0"
            # A mark on this document: a reload would lose it.
            await page.evaluate("window.notReloaded = true")
            await env.store.deliveries.disable_endpoint("acme", "410 Gone")
            await env.store.accept(deliveries_for("acme", ["PO-1", "PO-2", "PO-3"]))
            with anyio.fail_after(15):
                while await backlog.inner_text() != "3":
                    await anyio.sleep(0.1)
            await shot(page, "overview")
            kept = await page.evaluate("window.notReloaded === true")
            polls = int(await page.get_attribute("#overview", "data-polls") or "0")

    assert kept
    assert polls >= 1


async def test_selected_dead_letters_then_all_matching_are_replayed_after_confirmation(
    tmp_path: Path,
) -> None:
    async with console_gateway(tmp_path) as env:
        await env.store.accept(deliveries_for("acme", ["PO-1", "PO-2", "PO-3"]))
        env.wake("acme")
        dead = await env.until("acme", "dead")
        env.receiver.script = answering()
        async with browser_page(env.base) as page:
            await page.goto(env.base + "/console/dead-letters?partner=acme")
            rows = page.locator("#dead-letters tbody tr")
            for message in (dead[0].message_id, dead[1].message_id):
                await rows.filter(has_text=message).locator("input.pick").check()
            await page.click("button[data-replay-selected]")
            with anyio.fail_after(15):  # the page reloads once both are replayed
                while await rows.count() != 1:
                    await anyio.sleep(0.1)
            left = await rows.all_inner_texts()
            await page.click("button:has-text('Replay all matching')")
            await page.wait_for_selector("#dead-letters tr.empty")
            delivered = await env.until("acme", "delivered")

    assert len(left) == 1
    assert dead[2].message_id in left[0]
    assert sorted(env.receiver.delivered()) == sorted(d.message_id for d in delivered)
    assert len(env.receiver.delivered()) == 3
