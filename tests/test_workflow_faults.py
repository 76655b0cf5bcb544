"""The thread's durable timers across SIGKILL: armed in one process, fired once in the next."""

from __future__ import annotations

import contextlib
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from decimal import Decimal
from functools import partial
from pathlib import Path

import aio_pika
import anyio
import httpx
import pytest
from delivery_receiver import OK, Receiver, answering
from gatewaykit import Partner, collect, drain
from test_erp_ingress_gateway import Erp
from test_workflow_gateway import ACME as ACME_PARTNER
from test_workflow_gateway import GLOBEX as GLOBEX_PARTNER
from test_workflow_gateway import config_text, queue_for
from workflow_documents import T0, ack, arrived, asn, invoice, order, receipt

from actors.workflow.inputs import ThreadKey
from actors.workflow.rules import Context, apply
from actors.workflow.state import ThreadState, decode_state
from actors.workflow.tolerances import Tolerances
from canonical import (
    Document,
    Envelope,
    ExceptionNotice,
    PurchaseOrder,
    decode_envelope,
    document_type_of,
    encode_document,
    new_envelope,
)
from gateway.localbroker import free_port
from protocols.http.server import serve

pytestmark = [pytest.mark.anyio, pytest.mark.rabbitmq, pytest.mark.slow]

D = Decimal
HOUR = 3600.0
RUNNER = Path(__file__).with_name("clocked_gateway.py")


class ClockedGateway:
    """`clocked_gateway.py CONFIG START` as a child process a test SIGKILLs and restarts."""

    def __init__(self, config: Path, log: Path, admin_port: int) -> None:
        self.config, self.log, self.admin_port = config, log, admin_port
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    async def start(self, at: float) -> None:
        self.spawn(at)
        await self.ready()

    def spawn(self, at: float) -> None:
        self.starts += 1
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(RUNNER), str(self.config), repr(at)],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )

    async def ready(self) -> None:
        async with httpx.AsyncClient(timeout=2) as http:
            with anyio.fail_after(60):
                while True:
                    try:
                        ready = await http.get(f"http://127.0.0.1:{self.admin_port}/readyz")
                        if ready.status_code == 200:
                            return
                    except httpx.TransportError:
                        pass
                    await anyio.sleep(0.1)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()


def timer_state(db: Path, kind: str) -> str | None:
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT state FROM workflow_timers WHERE kind = ?", (kind,)).fetchone()
    return None if row is None else str(row[0])


async def test_no_ack_within_the_sla_is_one_late_acknowledgement_across_sigkills(
    tmp_path: Path, amqp_url: str
) -> None:
    po = order(41)
    erp = Erp()
    receiver = Receiver(answering(then=OK))
    db = tmp_path / "gateway.db"
    admin_port = free_port()
    async with (
        anyio.create_task_group() as tg,
        queue_for(amqp_url, ("exception.*",)) as exceptions,
    ):
        port = await tg.start(partial(serve, receiver, host="127.0.0.1", port=0))
        text = config_text(tmp_path, amqp_url, erp, receiver, port)
        text = text.replace("[admin]\nport = 0", f"[admin]\nport = {admin_port}")
        text = text.replace("quantity_percent = 5.0", "quantity_percent = 5.0\nack_sla_hours = 1.0")
        config = tmp_path / "gateway.toml"
        config.write_text(text)
        gateway = ClockedGateway(config, tmp_path / "gateway.log", admin_port)
        try:
            await gateway.start(T0)
            await erp.publish(amqp_url, encode_document(po), "erp-po-41")
            with anyio.fail_after(30):  # delivered to acme: the SLA timer is armed
                while timer_state(db, "acknowledgement_due") != "armed":
                    await anyio.sleep(0.05)
            gateway.kill()  # between arming and firing
            await gateway.start(T0 + 2 * HOUR)  # the SLA ran out while it was down
            with anyio.fail_after(30):
                while timer_state(db, "acknowledgement_due") != "fired":
                    await anyio.sleep(0.05)
            seen = [decode_envelope(m.body) for m in await drain(exceptions, expect=1)]
            gateway.kill()
            await gateway.start(T0 + 3 * HOUR)  # nothing is due again
            await anyio.sleep(1.0)  # a second firing would be published by now
            seen += [decode_envelope(m.body) for m in await drain(exceptions, expect=0)]
        finally:
            gateway.kill()
            tg.cancel_scope.cancel()

    late = [
        e
        for e in seen
        if isinstance(e.document, ExceptionNotice) and e.document.kind == "late_acknowledgement"
    ]
    # One event, by id; the relay is at-least-once, so the wire may repeat that one id.
    assert len({e.message_id for e in late}) == 1, [e.document for e in seen]
    assert {e.message_id for e in seen} == {late[0].message_id}


def _projection(state: ThreadState) -> tuple[object, ...]:
    """What a thread's business state is, without ids and times (those differ between runs)."""
    return (
        state.status,
        {n: (a.status, a.quantity) for n, a in state.acks.items()},
        state.shipped,
        state.received,
        state.invoiced,
        sorted(state.seen),
        state.invoices,
        state.receipts,
        sorted(e.kind for e in state.exceptions),
        state.parked,
    )


def _what(event: Envelope) -> tuple[str, str]:
    document = event.document
    detail = getattr(document, "kind", None) or getattr(document, "status", None)
    return event.document_type, str(detail or getattr(document, "result", ""))


def _thread_documents(n: int) -> tuple[PurchaseOrder, list[tuple[Partner, Document]]]:
    po = order(n)
    return po, [
        (ACME_PARTNER, ack(po, quantities={1: D(13)})),
        (ACME_PARTNER, asn(f"ASN-{n}", po, {1: D(12), 2: D(24), 3: D(36)})),
        (
            GLOBEX_PARTNER,
            receipt(f"GR-{n}", po, {1: (D(12), D(11)), 2: (D(24), D(24))}, asn_number=f"ASN-{n}"),
        ),
        (ACME_PARTNER, invoice(f"INV-{n}", po, {2: (D(24), D("13.00"))})),
    ]


def _reference(n: int) -> tuple[tuple[object, ...], Counter[tuple[str, str]]]:
    """The final state and events of thread `n` in a run without kills (the rules alone)."""
    po, documents = _thread_documents(n)
    key = ThreadKey("acme", po.po_number)
    tolerances = Tolerances(quantity_percent=D(5))
    state = ThreadState.new(key)
    events: Counter[tuple[str, str]] = Counter()
    inputs = [arrived(po, partner="erp"), *(arrived(d, partner=p.id) for p, d in documents)]
    for item in inputs:
        step = apply(state, item, Context(key=key, now=T0, tolerances=tolerances))
        state = step.state
        for emitted in step.events:
            envelope = new_envelope(emitted.document, partner_id="acme", idempotency_key="x")
            events[_what(envelope)] += 1
    return _projection(state), events


@pytest.mark.timeout(900)
async def test_500_threads_through_20_sigkills_end_as_without_kills(
    tmp_path: Path, amqp_url: str
) -> None:
    threads, kills, workers = 500, 20, 16
    erp = Erp()
    db = tmp_path / "gateway.db"
    admin_port, http_port = free_port(), free_port()
    text = config_text(tmp_path, amqp_url, erp, Receiver(answering(then=OK)), 1)
    # No delivery to acme here: when its outcome lands relative to the ack is a race, and the
    # status events would differ from run to run for that reason alone.
    text = text[: text.index("[[erp.subscriptions]]")] + text[text.index("[workflow]") :]
    text = (
        text[: text.index("[partners.outbound]")]
        + text[text.index('[[partners]]\nid = "globex"') :]
    )
    text = text.replace("[admin]\nport = 0", f"[admin]\nport = {admin_port}")
    text = text.replace("[http]\nport = 0", f"[http]\nport = {http_port}")
    config = tmp_path / "gateway.toml"
    config.write_text(text)
    gateway = ClockedGateway(config, tmp_path / "gateway.log", admin_port)
    started = time.time()
    todo = list(range(5000, 5000 + threads))
    left_at_kills: list[int] = []  # threads not yet driven when each kill struck

    async def drive(http: httpx.AsyncClient, channel: aio_pika.abc.AbstractChannel) -> None:
        exchange = await channel.get_exchange(erp.exchange)
        while todo:
            n = todo.pop()
            po, documents = _thread_documents(n)
            await exchange.publish(
                aio_pika.Message(
                    encode_document(po),
                    message_id=f"erp-po-{n}",
                    correlation_id=f"corr-po-{n}",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key="purchase_order.released",
            )
            for i, (partner, document) in enumerate(documents):
                body = encode_document(document)
                key = f"{n}-{i}"
                while True:  # a partner retries with the same key until it hears 2xx
                    try:
                        response = await http.post(
                            f"/webhooks/{partner.id}/{document_type_of(document)}",
                            content=body,
                            headers=partner.headers(body, webhook_id=key),
                        )
                    except httpx.TransportError:
                        await anyio.sleep(0.05)
                        continue
                    if response.status_code == 202:
                        break
                    assert response.status_code in (409, 503), response.text
                    await anyio.sleep(0.05)

    async def killer() -> None:
        rng = random.Random(18)
        for _ in range(kills):
            await anyio.sleep(rng.uniform(0.5, 1.5))
            gateway.kill()
            left_at_kills.append(len(todo))
            gateway.spawn(T0 + time.time() - started)

    async with queue_for(amqp_url, EVENT_KEYS) as events:
        await gateway.start(T0)
        try:
            async with (
                await aio_pika.connect(amqp_url) as connection,
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}", timeout=10) as http,
            ):
                channel = await connection.channel()
                with anyio.fail_after(600):
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(killer)
                        for _ in range(workers):
                            tg.start_soon(drive, http, channel)
            await gateway.ready()
            with anyio.fail_after(300):
                while not _all_done(db, threads):
                    await anyio.sleep(0.2)
            seen = await collect(events, idle=2.0)
        finally:
            gateway.kill()

    assert gateway.starts == kills + 1
    assert any(left for left in left_at_kills)  # kills struck while threads were being driven
    expected = {order(n).po_number: _reference(n) for n in range(5000, 5000 + threads)}
    states = _states(db)
    assert set(states) == set(expected)
    wrong = [po for po, state in states.items() if _projection(state) != expected[po][0]]
    assert wrong == []
    by_thread: dict[str, dict[str, tuple[str, str]]] = {}
    for envelope in seen:
        po_number = getattr(envelope.document, "po_number", None)
        by_thread.setdefault(str(po_number), {})[envelope.message_id] = _what(envelope)
    lost_or_twice = {
        po: Counter(ids.values())
        for po, ids in by_thread.items()
        if Counter(ids.values()) != expected[po][1]
    }
    assert len(by_thread) == threads
    assert lost_or_twice == {}  # 0 lost, 0 emitted twice (by event id)
    print(
        f"\nthreads={threads} kills={kills} events={len(seen)} distinct="
        f"{sum(len(ids) for ids in by_thread.values())}"
    )


EVENT_KEYS = (
    "exception.*",
    "purchase_order_status.*",
    "inbound_shipment.*",
    "receipt_discrepancy.*",
    "invoice_match.*",
)


def _all_done(db: Path, threads: int) -> bool:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        done = conn.execute(
            "SELECT count(*) FROM workflow_threads WHERE status = 'invoiced'"
        ).fetchone()[0]
        pending = conn.execute("SELECT count(*) FROM outbox WHERE state = 'pending'").fetchone()[0]
    return bool(done == threads and pending == 0)


def _states(db: Path) -> dict[str, ThreadState]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT po_number, state FROM workflow_threads").fetchall()
    return {po: decode_state(bytes(blob)) for po, blob in rows}
