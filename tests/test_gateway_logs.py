"""What an operator reads: the log lines of a real `gateway run` process, from its stderr.

One scenario runs once for the module against the session's broker and two partner
endpoints on loopback, and every test reads its lines: a webhook the relay cannot route (no
queue bound to the events exchange), an ERP message published ten times under one message id,
a partner endpoint failing until its delivery is a dead letter, and another answering 410 to
the four attempts it holds in flight at once. Then SIGTERM, and the process's exit.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import anyio
import httpx
import orjson
import pytest
from delivery_receiver import FAST_SCHEDULE, Receiver, answering, outbound_toml, serving
from gatewaykit import Partner, write_config

from canonical import sample_body
from gateway.localbroker import LocalRabbitMQ, free_port

pytestmark = [pytest.mark.rabbitmq]

ACME = Partner("acme")
GLOBEX = Partner("globex")
FAIL = (500, {}, b"boom")
GONE = (410, {}, b"gone")
# Attempts globex's endpoint holds before answering them all 410 (its outbound concurrency).
IN_FLIGHT = 4
DUPLICATES = 10
# Loggers whose every line in this scenario is about one message.
MESSAGE_LOGGERS = ("actors.relay", "actors.delivery._courier", "actors.erp_ingress")


@dataclass(frozen=True)
class Scenario:
    lines: list[dict[str, Any]]
    raw: str
    exit_code: int
    webhook_message_id: str
    webhook_correlation_id: str
    acme_webhook_ids: set[str]  # what acme's endpoint was sent as webhook-id
    erp_duplicate_id: str
    erp_duplicate_rows: int  # inbox rows kept for the ten publishes
    globex_statuses: list[int]


@pytest.fixture(scope="module")
def scenario(rabbitmq: LocalRabbitMQ, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    folder = tmp_path_factory.mktemp("logs")
    return anyio.run(_run, rabbitmq.url, folder, backend="asyncio")


def _partner_toml(partner: Partner, outbound: str) -> str:
    return (
        f'[[partners]]\nid = "{partner.id}"\nname = "{partner.id}"\n'
        f'secrets = ["{partner.secret}"]\nsends = ["purchase_order"]\n'
        f'receives = ["purchase_order"]\n{outbound}'
    )


def _erp_toml(tag: str) -> str:
    subscriptions = "".join(
        f'[[erp.subscriptions]]\npartner = "{p}"\ndocument = "purchase_order"\n'
        'match = { "supplier.party_id" = "{partner}" }\n'
        for p in ("acme", "globex")
    )
    return (
        "[erp]\nrequeue_delay_s = 0.1\n"
        f'[[erp.consumers]]\nqueue = "test.logs.erp.{tag}"\nexchange = "test.logs.erp.{tag}"\n'
        'prefetch = 16\nconcurrency = 8\nbindings = { "po.released" = "purchase_order" }\n'
        f"{subscriptions}"
    )


def _erp_order(n: int, supplier: str) -> bytes:
    document = orjson.loads(sample_body("purchase_order", n))
    document["supplier"]["party_id"] = supplier
    return orjson.dumps(document)


def _rows(db: Path, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(query).fetchall()


async def _until(db: Path, query: str, wanted: object, timeout: float = 30) -> None:
    with anyio.fail_after(timeout):
        while await anyio.to_thread.run_sync(_rows, db, query) != wanted:
            await anyio.sleep(0.1)


async def _run(amqp_url: str, folder: Path) -> Scenario:
    tag = uuid.uuid4().hex[:8]
    acme = Receiver(answering(then=FAIL))
    all_in_flight = anyio.Event()

    async def gone_together(n: int) -> tuple[int, dict[str, str], bytes]:
        if n >= IN_FLIGHT:
            all_in_flight.set()
        with anyio.move_on_after(10):
            await all_in_flight.wait()
        return GONE

    globex = Receiver(gone_together)
    http_port, admin_port = free_port(), free_port()
    async with serving(acme) as acme_url, serving(globex) as globex_url:
        partners = _partner_toml(ACME, outbound_toml(acme_url, acme.secret, FAST_SCHEDULE))
        partners += _partner_toml(GLOBEX, outbound_toml(globex_url, globex.secret))
        path = write_config(
            folder,
            amqp_url,
            [],
            http_port=http_port,
            admin_port=admin_port,
            extra=_erp_toml(tag) + partners,
        )
        # An events exchange of its own, with no queue bound: every publish is unroutable.
        text = path.read_text().replace("[amqp]\n", f'[amqp]\nevents_exchange = "logs.{tag}"\n')
        path.write_text(text)
        db = folder / "gateway.db"
        stderr = folder / "stderr.log"
        with stderr.open("wb") as sink:
            process = await anyio.open_process(
                [sys.executable, "-m", "gateway.cli", "run", str(path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=sink,
            )
        try:
            async with httpx.AsyncClient(timeout=10) as http:
                with anyio.fail_after(30):
                    while True:
                        try:
                            ready = await http.get(f"http://127.0.0.1:{admin_port}/readyz")
                        except httpx.TransportError:
                            ready = None
                        if ready is not None and ready.status_code == 200:
                            break
                        await anyio.sleep(0.1)
                body = sample_body("purchase_order", 1)
                answer = await http.post(
                    f"http://127.0.0.1:{http_port}/webhooks/acme/purchase_order",
                    content=body,
                    headers=ACME.headers(body),
                )
                assert answer.status_code == 202, answer.text
                accepted = answer.json()

            duplicate_id = f"erp-dup-{tag}"
            async with await aio_pika.connect(amqp_url) as connection:
                channel = await connection.channel()
                exchange = await channel.get_exchange(f"test.logs.erp.{tag}")

                async def publish(body: bytes, message_id: str) -> None:
                    message = aio_pika.Message(
                        body, message_id=message_id, correlation_id=f"corr-{message_id}"
                    )
                    await exchange.publish(message, routing_key="po.released")

                async with anyio.create_task_group() as tg:
                    for _ in range(DUPLICATES):
                        tg.start_soon(publish, _erp_order(2, "acme"), duplicate_id)
                for n in range(IN_FLIGHT):
                    await publish(_erp_order(10 + n, "globex"), f"erp-globex-{tag}-{n}")

            await _until(db, "select state from deliveries where partner_id = 'acme'", [("dead",)])
            await _until(db, "select count(*) from endpoints where disabled_at is not null", [(1,)])
            await _until(db, "select count(*) from outbox where state = 'pending'", [(0,)])
            kept = _rows(db, f"select count(*) from inbox where idempotency_key = '{duplicate_id}'")
        finally:
            process.send_signal(signal.SIGTERM)
            with anyio.fail_after(30):
                exit_code = await process.wait()

    raw = stderr.read_text()
    return Scenario(
        lines=[orjson.loads(line) for line in raw.splitlines()],
        raw=raw,
        exit_code=exit_code,
        webhook_message_id=accepted["message_ids"][0],
        webhook_correlation_id=accepted["correlation_id"],
        acme_webhook_ids={call.message_id for call in acme.calls},
        erp_duplicate_id=duplicate_id,
        erp_duplicate_rows=kept[0][0],
        globex_statuses=[status for _, status in globex.answered],
    )


def test_every_line_about_a_message_carries_its_ids(scenario: Scenario) -> None:
    about_messages = [line for line in scenario.lines if line["logger"] in MESSAGE_LOGGERS]

    assert {line["logger"] for line in about_messages} >= {
        "actors.relay",
        "actors.delivery._courier",
    }
    for line in about_messages:
        assert {"message_id", "partner", "correlation_id"} <= line.keys(), line


def test_the_relay_names_the_message_it_dead_letters_not_its_row(scenario: Scenario) -> None:
    (line,) = [
        line
        for line in scenario.lines
        if line["logger"] == "actors.relay"
        and line.get("message_id") == scenario.webhook_message_id
    ]

    assert line["level"] == "error"
    assert line["partner"] == "acme"
    assert line["correlation_id"] == scenario.webhook_correlation_id
    assert "NO_ROUTE" in line["event"]
    assert "row" not in line["event"]


def test_the_courier_names_the_message_it_dead_letters(scenario: Scenario) -> None:
    (line,) = [
        line
        for line in scenario.lines
        if line["logger"] == "actors.delivery._courier" and "dead-lettered" in line["event"]
    ]

    assert line["message_id"] in scenario.acme_webhook_ids
    assert line["partner"] == "acme"
    assert line["correlation_id"] == f"corr-{scenario.erp_duplicate_id}"


def test_library_noise_is_filtered_and_no_line_carries_colour_codes(scenario: Scenario) -> None:
    loggers = {line["logger"] for line in scenario.lines}

    assert not {name for name in loggers if name.split(".")[0] in ("httpx", "httpcore")}
    assert not [line for line in scenario.lines if "color_message" in line]
    assert "\x1b" not in scenario.raw
    assert "\\u001b" not in scenario.raw


def test_start_and_stop_are_one_line_each(scenario: Scenario) -> None:
    events = Counter(
        (line["logger"], line["event"]) for line in scenario.lines if "message_id" not in line
    )

    assert [event for event, count in events.items() if count > 1] == []
    assert events[("gateway", "gateway ready")] == 1
    assert events[("gateway", "signal SIGTERM: shutting down")] == 1
    assert events[("gateway", "gateway stopped")] == 1
    assert scenario.exit_code == 0


def test_a_410_answered_to_every_attempt_in_flight_is_logged_once(scenario: Scenario) -> None:
    gone_lines = [
        line
        for line in scenario.lines
        if line["logger"] == "actors.delivery._courier" and "410" in line["event"]
    ]

    assert scenario.globex_statuses == [410] * IN_FLIGHT
    assert len(gone_lines) == 1
    assert gone_lines[0]["partner"] == "globex"
    assert gone_lines[0]["level"] == "warning"


def test_a_duplicate_erp_publish_is_no_warning(scenario: Scenario) -> None:
    erp_lines = [line for line in scenario.lines if line["logger"] == "actors.erp_ingress"]

    assert scenario.erp_duplicate_rows == 1  # ten publishes, one message kept
    assert [line for line in erp_lines if line["level"] not in ("debug", "info")] == []
