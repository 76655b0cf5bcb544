"""The thread's durable timers across SIGKILL: armed in one process, fired once in the next."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from functools import partial
from pathlib import Path

import anyio
import httpx
import pytest
from delivery_receiver import OK, Receiver, answering
from gatewaykit import drain
from test_erp_ingress_gateway import Erp
from test_workflow_gateway import config_text, queue_for
from workflow_documents import T0, order

from canonical import ExceptionNotice, decode_envelope, encode_document
from gateway.localbroker import free_port
from protocols.http.server import serve

pytestmark = [pytest.mark.anyio, pytest.mark.rabbitmq, pytest.mark.slow]

HOUR = 3600.0
RUNNER = Path(__file__).with_name("clocked_gateway.py")


class ClockedGateway:
    """`clocked_gateway.py CONFIG START` as a child process a test SIGKILLs and restarts."""

    def __init__(self, config: Path, log: Path, admin_port: int) -> None:
        self.config, self.log, self.admin_port = config, log, admin_port
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self, at: float) -> None:
        self.spawn(at)
        await self.ready()

    def spawn(self, at: float) -> None:
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
