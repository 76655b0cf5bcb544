"""What the gateway's end-to-end tests share: a config on disk, a signed partner, a queue."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import aio_pika
import anyio
import httpx
import standardwebhooks
from configkit import base, erp_section, partner, supplier, write

from canonical import Envelope, decode_envelope
from canonical.ids import new_message_id
from gateway.app import Gateway
from gateway.config import GatewayConfig, Secret, load_config
from protocols.http.signatures import decode_whsec, sign

if TYPE_CHECKING:
    from test_erp_ingress_gateway import Erp

DOCUMENTS = '["purchase_order", "purchase_order_ack", "advance_ship_notice", "inventory_delta"]'


class Partner:
    """A partner as the outside world sees it: an id and a secret to sign with."""

    def __init__(self, partner_id: str, secret: str | None = None) -> None:
        self.id = partner_id
        self.secret = secret or Secret.generate().reveal()
        self._webhook = standardwebhooks.Webhook(self.secret)

    def headers(self, body: bytes, webhook_id: str | None = None) -> dict[str, str]:
        """Standard Webhooks headers, signed with the reference package."""
        msg_id = webhook_id or f"msg_{new_message_id()}"
        now = dt.datetime.now(dt.UTC)
        try:
            signature = self._webhook.sign(msg_id, now, body.decode())
        except UnicodeDecodeError:  # the reference package signs text only
            key = decode_whsec(self.secret)
            signature = sign(key, msg_id, int(now.timestamp()), body)
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature,
            "content-type": "application/json",
        }


def write_config(
    folder: Path,
    amqp_url: str,
    partners: list[Partner],
    *,
    http_port: int = 0,
    admin_port: int = 0,
    extra: str = "",
    partner_extra: str = "",
    documents: str = DOCUMENTS,
) -> Path:
    """Write a gateway TOML for `partners` into `folder` and return its path."""
    listeners = base(folder, amqp_url, http_port=http_port, admin_port=admin_port)
    entries = [
        partner(p.id, [p.secret], sends=documents, extra=f"{partner_extra}\n") for p in partners
    ]
    return write(folder, listeners, extra, *entries)


def erp_supplier(folder: Path, amqp_url: str, erp: Erp, channel: str, *, extra: str = "") -> Path:
    """acme, the only partner, receives the purchase orders `erp` releases over `channel`."""
    return write_config(
        folder,
        amqp_url,
        [Partner("acme")],
        extra=extra + erp_section(erp),
        partner_extra=supplier(channel),
    )


class GatewayProcess:
    """`gateway run CONFIG` as a child process that a test may SIGKILL and start again."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "run", str(self.config)],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                # A process group of its own, as under a service manager: a test can signal
                # the gateway and its store writer together, as a terminal hang-up does.
                start_new_session=True,
            )

    def children(self) -> set[int]:
        """The gateway's child processes now (its store writer)."""
        assert self.process is not None
        pid = self.process.pid
        return {int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def terminate(self) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited within 30 s (a stalled event loop)."""
        if self.process is None:
            return None
        self.process.terminate()
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.process.returncode


async def listening(port: int, timeout: float = 30.0) -> None:
    """Return once something accepts connections on 127.0.0.1:`port`."""
    with anyio.fail_after(timeout):
        while True:
            try:
                stream = await anyio.connect_tcp("127.0.0.1", port)
            except OSError:
                await anyio.sleep(0.05)
                continue
            await stream.aclose()
            return


def load(path: Path) -> GatewayConfig:
    return load_config(path, {})


@asynccontextmanager
async def running(config: GatewayConfig, config_path: Path | None = None) -> AsyncIterator[Gateway]:
    """Run a gateway in this test's event loop until the block ends (reloading from
    `config_path`, when given)."""
    gateway = Gateway(config, config_path=config_path)
    async with anyio.create_task_group() as tg:
        await tg.start(gateway.run)
        try:
            yield gateway
        finally:
            gateway.stop()


@asynccontextmanager
async def consuming(config: GatewayConfig, timeout: float = 15.0) -> AsyncIterator[Gateway]:
    """`running`, from when the gateway's ERP consumers consume: their queues exist and are
    bound, so what the ERP publishes from then on reaches the gateway."""
    async with running(config) as gateway:
        with anyio.fail_after(timeout):
            while not all(c.statistics().consuming for c in gateway.erp_consumers):
                await anyio.sleep(0.02)
        yield gateway


def client(gateway: Gateway) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.http_port}", timeout=10)


@asynccontextmanager
async def bound_queue(
    amqp_url: str, name: str, key: str = "#", *, delete: bool = True
) -> AsyncIterator[aio_pika.abc.AbstractQueue]:
    """A fresh queue bound to the events exchange, deleted afterwards."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange("gateway.events", "topic", durable=True)
        queue = await channel.declare_queue(name, durable=True)
        if delete:
            await queue.purge()
        await queue.bind(exchange, key)
        try:
            yield queue
        finally:
            if delete:
                await queue.delete(if_unused=False, if_empty=False)


async def drain(
    queue: aio_pika.abc.AbstractQueue, *, expect: int, timeout: float = 10.0
) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Take messages off `queue` until `expect` arrived or `timeout` passed, then a moment more."""
    got: list[aio_pika.abc.AbstractIncomingMessage] = []
    with anyio.move_on_after(timeout):
        while len(got) < expect:
            message = await queue.get(fail=False)
            if message is None:
                await anyio.sleep(0.02)
                continue
            await message.ack()
            got.append(message)
    # Anything beyond `expect` (a duplicate) would show up here.
    await anyio.sleep(0.2)
    while (extra := await queue.get(fail=False)) is not None:
        await extra.ack()
        got.append(extra)
    return got


async def collect(queue: aio_pika.abc.AbstractQueue, idle: float = 1.0) -> list[Envelope]:
    """The envelope of every message on `queue`, in queue order, until it stays empty `idle`
    seconds (for a test that does not know how many to expect: after a kill, a replay)."""
    seen: list[Envelope] = []
    quiet = 0.0
    while quiet < idle:
        message = await queue.get(fail=False)
        if message is None:
            await anyio.sleep(0.05)
            quiet += 0.05
            continue
        quiet = 0.0
        await message.ack()
        seen.append(decode_envelope(message.body))
    return seen
