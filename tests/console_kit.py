"""Support for the console tests: a running gateway with a token, a thread, headless Chromium."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import httpx
from conftest import service_missing
from delivery_receiver import Answer, Receiver, answering, deliveries_for, outbound_toml, serving
from gatewaykit import Partner, load, running, write_config

from actors.workflow.state import OpenException, OrderLine, ThreadState, encode_state
from canonical.delivery import DeliveryRecord
from canonical.ids import new_message_id
from canonical.outbox import Acceptance, NewDelivery
from gateway.app import Gateway
from gateway.config import Secret
from gateway.store import Store
from gateway.store.workflow_state import EventRow, JournalEntry, StepRecord

NO_BROKER = "amqp://guest:guest@127.0.0.1:9/"
FAIL: Answer = (500, {}, b"boom")
# Two fast retries, then a dead letter.
SCHEDULE = (0.05, 0.05)
TOKEN = Secret.generate().reveal()
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts" / "console"


@dataclass
class Env:
    gateway: Gateway
    base: str
    receiver: Receiver

    @property
    def store(self) -> Store:
        assert self.gateway.store is not None
        return self.gateway.store

    def wake(self, partner: str) -> None:
        assert self.gateway.outbound is not None
        self.gateway.outbound.wake(partner)

    async def until(self, partner: str, wanted: str, deadline: float = 15) -> list[DeliveryRecord]:
        """Wait (bounded) until every delivery of `partner` is in state `wanted`; return them."""
        with anyio.fail_after(deadline):
            while True:
                found = await self.store.deliveries.deliveries(partner_id=partner)
                if found and {d.state for d in found} == {wanted}:
                    return found
                await anyio.sleep(0.02)

    async def dead_one(self, aggregate: str) -> DeliveryRecord:
        """Commit one delivery to acme, let the failing receiver kill it, return it dead."""
        await self.store.accept(deliveries_for("acme", [aggregate]))
        self.wake("acme")
        (dead,) = await self.until("acme", "dead")
        return dead


def delivery_of(partner: str, message_id: str) -> Acceptance:
    """One acceptance carrying one delivery of `message_id` to `partner`."""
    key = new_message_id()
    return Acceptance(
        partner_id=partner,
        idempotency_key=key,
        body_hash=hashlib.sha256(key.encode()).digest(),
        response_status=202,
        response_body=b"{}",
        deliveries=(
            NewDelivery(
                partner_id=partner,
                message_id=message_id,
                document_type="exception",
                aggregate_key=message_id,
                correlation_id="corr",
                body=b"{}",
            ),
        ),
    )


@asynccontextmanager
async def console_gateway(tmp_path: Path) -> AsyncIterator[Env]:
    """A gateway with partners acme and globex (webhooks to a failing receiver), admin token."""
    receiver = Receiver(answering(then=FAIL))
    async with serving(receiver) as url:
        toml = outbound_toml(url, receiver.secret, SCHEDULE)
        path = write_config(
            tmp_path, NO_BROKER, [Partner("acme"), Partner("globex")], partner_extra=toml
        )
        path.write_text(path.read_text().replace("[admin]\n", f'[admin]\ntoken = "{TOKEN}"\n', 1))
        async with running(load(path)) as gateway:
            yield Env(gateway, f"http://127.0.0.1:{gateway.admin_port}", receiver)


@asynccontextmanager
async def logged_in(base: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client holding a console session (the login form's cookie)."""
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        answer = await client.post("/console/login", data={"token": TOKEN})
        assert answer.status_code == 303, answer.text
        yield client


def csrf_of(html: str) -> str:
    marker = 'name="csrf-token" content="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


# A thread: the ERP's order, acme's acknowledgement (line 1 beyond tolerance: an exception),
# an ASN; the shipment timer still armed.
THREAD_INPUTS = (
    ("po-msg-1", "purchase_order", "amqp", None),
    ("ack-msg-1", "purchase_order_ack", "webhook", "acme"),
    ("asn-msg-1", "advance_ship_notice", "webhook", "acme"),
)


async def seed_thread(store: Store, po_number: str, correlation_id: str) -> None:
    """Write a three-step thread for acme through the store's own step transaction."""
    began = time.time() - 3600  # an hour ago, a minute between inputs
    state = ThreadState(
        supplier="acme",
        po_number=po_number,
        status="shipped",
        correlation_id=correlation_id,
        lines={
            1: OrderLine(
                line_number=1,
                sku="SKU-1",
                quantity=Decimal(10),
                uom="EA",
                unit_price=Decimal("2.50"),
                requested_date=dt.date(2026, 12, 24),
            )
        },
        shipped={1: Decimal(10)},
        exceptions=(
            OpenException(
                exception_id="exc-1",
                kind="rejected_line",
                raised_at=began + 60,
                description="line 1 acknowledged 12, beyond the 5 % tolerance",
                line_number=1,
            ),
        ),
    )
    statuses = ("sent", "acknowledged", "shipped")
    for version, ((message_id, document_type, channel, partner), status) in enumerate(
        zip(THREAD_INPUTS, statuses, strict=True)
    ):
        events: tuple[EventRow, ...] = ()
        if document_type == "purchase_order_ack":
            events = (
                EventRow(
                    message_id="exc-event-1",
                    partner_id="acme",
                    document_type="exception",
                    schema_version=1,
                    routing_key="exception.acme",
                    correlation_id=correlation_id,
                    causation_id=message_id,
                    body=b'{"kind": "rejected_line"}',
                ),
            )
        arm: tuple[tuple[str, float], ...] = ()
        if document_type == "advance_ship_notice":
            arm = (("receipt_due", began + 2 * 86400),)
        result = await store.workflow.apply_step(
            StepRecord(
                supplier="acme",
                po_number=po_number,
                buyer="distco",
                correlation_id=correlation_id,
                status=status,
                state=encode_state(state),
                expected_version=version,
                input=JournalEntry(
                    message_id=message_id,
                    document_type=document_type,
                    channel=channel,
                    occurred_at=began + 60 * version,
                    partner_id=partner,
                ),
                events=events,
                arm=arm,
            )
        )
        assert result.outcome == "applied", result


@asynccontextmanager
async def browser_page(base: str) -> AsyncIterator[Any]:
    """A logged-in page in headless Chromium (Debian's; Playwright's download is unreachable)."""
    if shutil.which(CHROMIUM) is None:
        service_missing(f"no chromium at {CHROMIUM}: apt-get install -y chromium")
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            context = await browser.new_context(viewport={"width": 1400, "height": 900})
            page = await context.new_page()
            page.set_default_timeout(15_000)
            page.on("dialog", lambda dialog: dialog.accept())
            await page.goto(base + "/console/")
            assert page.url.endswith("/console/login")
            await page.fill("#token", TOKEN)
            await page.click("button[type=submit]")
            await page.wait_for_url(base + "/console/")
            yield page
        finally:
            await browser.close()


async def shot(page: Any, name: str) -> None:
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
