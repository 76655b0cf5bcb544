"""Files over SFTP in the whole gateway, against the real sshd (tests/sshd.py) and the real
RabbitMQ node: a partner's server polled with its host key pinned, and the hosted drop box a
partner uploads to with its own key. What counts is what a user sees: files in the partner's
folders, messages on the queue, the store's record of each file, the operator's metrics."""

from __future__ import annotations

import os
import signal
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import asyncssh
import httpx
import orjson
import pytest
from aio_pika.abc import AbstractIncomingMessage
from files_support import HEADER, row
from gatewaykit import Partner, bound_queue, drain, load, write_config
from sshd import LocalSshd, new_key

from gateway.app import Gateway
from gateway.config import GatewayConfig

pytestmark = [pytest.mark.anyio, pytest.mark.rabbitmq]

ACME = Partner("acme")
STOCK = HEADER + row("S-1", "2") + row("S-7", "1") + row("S-2", "5", "EA")
# Two positions and one exception (S-7 is not in the cross-reference) per STOCK file.
STOCK_MESSAGES = 3
MTIME = 1_780_000_000

RULES = """
[partners.files]
[[partners.files.rules]]
pattern = "stock_*.csv"
document_type = "inventory_position"
format = "csv"
[partners.files.rules.csv]
columns = {{ "Item" = "sku", "Warehouse" = "location_id", "Qty" = "on_hand", "Unit" = "uom", \
"Date" = "as_of" }}
items_file = "{items}"
"""


def rules(folder: Path) -> str:
    items = folder / "items.csv"
    items.write_text(
        "supplier_sku,sku,stocking_uom,units_per_pack,pack_uom\nS-1,SKU-1,EA,12,CS\nS-2,SKU-2,EA,1,\n",
        encoding="utf-8",
    )
    return RULES.format(items=items)


def server_config(
    folder: Path,
    amqp_url: str,
    server: LocalSshd,
    *,
    host_key: str | None = None,
    allow_networks: str = '["127.0.0.0/8"]',
) -> GatewayConfig:
    """A gateway whose partner acme drops files on its own server: the session's sshd."""
    (folder / "acme.key").write_text(server.client_key)
    sftp = f"""
[partners.sftp]
poll_interval_s = 0.2
settle_s = 1
[partners.sftp.server]
host = "127.0.0.1"
port = {server.port}
username = "{server.username}"
host_key = "{host_key or server.host_key}"
private_key = {{ file = "acme.key" }}
allow_networks = {allow_networks}
connect_timeout_s = 2
operation_timeout_s = 5
"""
    path = write_config(folder, amqp_url, [ACME], partner_extra=sftp + rules(folder))
    return load(path)


def drop(server: LocalSshd, name: str, text: str) -> Path:
    """The partner leaves a complete file in its incoming folder."""
    path = server.folder("incoming") / name
    path.write_text(text, encoding="utf-8")
    os.utime(path, (MTIME, MTIME))
    return path


def names(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


def received(config: GatewayConfig) -> list[tuple[object, ...]]:
    with sqlite3.connect(config.store.path) as conn:
        return conn.execute("SELECT path, state, documents, move FROM received_files").fetchall()


async def until(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    try:
        with anyio.fail_after(timeout):
            while not check():
                await anyio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"not within {timeout} s: {what}")


@asynccontextmanager
async def running(
    config: GatewayConfig, on_file_commit: Callable[[], None] | None = None
) -> AsyncIterator[Gateway]:
    """Run a gateway in this test's loop; `on_file_commit` runs after each file's commit,
    before the file is moved on the partner's server."""
    gateway = Gateway(config)
    if on_file_commit is not None:
        committed = gateway._files_committed

        def hooked() -> None:
            committed()
            on_file_commit()

        # Told by the poller between a file's commit and its move: the window under test.
        gateway._files_committed = hooked  # type: ignore[method-assign]
    async with anyio.create_task_group() as tg:
        await tg.start(gateway.run)
        try:
            yield gateway
        finally:
            gateway.stop()


def gauge(gateway: Gateway, name: str) -> float | None:
    return gateway.metrics.registry.get_sample_value(name, {"partner": "acme"})


def positions(messages: Sequence[AbstractIncomingMessage]) -> list[tuple[str, str, str, int]]:
    """(routing key, sku or '', file, line) of each message, in line order."""
    found = []
    for message in messages:
        body = orjson.loads(message.body)
        document = body["document"]
        found.append(
            (
                message.routing_key or "",
                document.get("sku", ""),
                body["provenance"]["file"],
                body["provenance"]["line"],
            )
        )
    return sorted(found, key=lambda p: p[3])


EXPECTED = [
    ("inventory_position.acme", "SKU-1", "stock_1.csv", 2),
    ("exception.acme", "", "stock_1.csv", 3),
    ("inventory_position.acme", "SKU-2", "stock_1.csv", 4),
]


async def test_a_file_on_the_partners_server_reaches_the_queue_once_and_is_archived(
    tmp_path: Path, amqp_url: str, sftp_server: LocalSshd
) -> None:
    config = server_config(tmp_path, amqp_url, sftp_server)
    archive = sftp_server.folder("archive")
    async with bound_queue(amqp_url, "test.files.sftp") as queue, running(config):
        drop(sftp_server, "stock_1.csv", STOCK)
        drop(sftp_server, "stock_2.csv.part", STOCK)  # still being written: never read
        await until(lambda: names(archive) == ["stock_1.csv"], "archived on the server")
        first = await drain(queue, expect=STOCK_MESSAGES)

        # The same file dropped again (same name, size, mtime, content): nothing new.
        drop(sftp_server, "stock_1.csv", STOCK)
        await until(lambda: len(names(archive)) == 2, "the duplicate archived")
        second = await drain(queue, expect=0, timeout=1.0)

    assert positions(first) == EXPECTED
    assert second == []
    assert names(archive) == ["stock_1-1.csv", "stock_1.csv"]  # never overwritten
    assert names(sftp_server.folder("incoming")) == ["stock_2.csv.part"]
    assert received(config) == [("stock_1.csv", "accepted", 2, "done")]


async def test_a_connection_dropped_between_commit_and_move_loses_and_duplicates_nothing(
    tmp_path: Path, amqp_url: str, sftp_server: LocalSshd
) -> None:
    config = server_config(tmp_path, amqp_url, sftp_server)
    listener = sftp_server.process
    assert listener is not None
    cut: list[int] = []

    def drop_the_connection() -> None:
        # The commit is done; before the move reaches the server, the link goes, and the
        # server takes no new connection (its listener stopped) until the test says so.
        if not cut:
            os.kill(listener.pid, signal.SIGSTOP)
            cut.append(sftp_server.drop_sessions())

    try:
        async with (
            bound_queue(amqp_url, "test.files.sftp.drop") as queue,
            running(config, on_file_commit=drop_the_connection) as gateway,
        ):
            drop(sftp_server, "stock_1.csv", STOCK)
            await until(
                lambda: gauge(gateway, "gateway_file_channel_unavailable") == 1,
                "the move failed as unavailable",
            )
            # Committed, not moved: the file is still on the server, the move pending.
            assert names(sftp_server.folder("incoming")) == ["stock_1.csv"]
            assert received(config) == [("stock_1.csv", "accepted", 2, "pending")]

            os.kill(listener.pid, signal.SIGCONT)
            await until(
                lambda: names(sftp_server.folder("archive")) == ["stock_1.csv"],
                "moved by a later round",
            )
            messages = await drain(queue, expect=STOCK_MESSAGES)
            await until(
                lambda: gauge(gateway, "gateway_file_channel_unavailable") == 0, "reachable again"
            )
    finally:
        os.kill(listener.pid, signal.SIGCONT)

    assert cut[0] > 0  # a session was there to kill
    assert positions(messages) == EXPECTED  # each once: nothing lost, nothing twice
    assert names(sftp_server.folder("incoming")) == []
    assert received(config) == [("stock_1.csv", "accepted", 2, "done")]


@pytest.mark.parametrize(
    ("change", "reason"),
    [("host_key", "sftp-host-key-refused"), ("allow_networks", "egress-refused")],
    ids=["changed-host-key", "loopback-not-allowed"],
)
async def test_a_refused_server_is_shown_to_the_operator_and_nothing_is_taken(
    tmp_path: Path,
    amqp_url: str,
    sftp_server: LocalSshd,
    caplog: pytest.LogCaptureFixture,
    change: str,
    reason: str,
) -> None:
    if change == "host_key":
        _, someone_else = new_key()
        config = server_config(tmp_path, amqp_url, sftp_server, host_key=someone_else)
    else:
        config = server_config(tmp_path, amqp_url, sftp_server, allow_networks="[]")
    async with bound_queue(amqp_url, "test.files.sftp.refused") as queue, running(config) as gw:
        drop(sftp_server, "stock_1.csv", STOCK)
        await until(lambda: gauge(gw, "gateway_file_channel_refused") == 1, "refused")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.admin_port}") as http:
            metrics = (await http.get("/metrics")).text
        # A few more rounds: still refused, the gateway still up, the error logged once.
        rounds = gw.files.poller("acme").rounds if gw.files else 0
        await until(
            lambda: gw.files is not None and gw.files.poller("acme").rounds > rounds + 2, ""
        )
        nothing = await drain(queue, expect=0, timeout=0.5)

    assert 'gateway_file_channel_refused{partner="acme"} 1.0' in metrics
    assert f'gateway_file_channel_failed_rounds_total{{partner="acme",reason="{reason}"}}' in (
        metrics
    )
    errors = [r for r in caplog.records if r.levelname == "ERROR" and r.name == "gateway.files"]
    assert [r.fields["reason"] for r in errors] == [reason]  # type: ignore[attr-defined]
    assert nothing == []
    assert names(sftp_server.folder("incoming")) == ["stock_1.csv"]
    assert received(config) == []


async def test_a_file_a_partner_uploads_to_the_drop_box_reaches_the_queue(
    tmp_path: Path, amqp_url: str
) -> None:
    box_private, box_public = new_key()
    acme_private, acme_public = new_key()
    (tmp_path / "box.key").write_text(box_private)
    box = tmp_path / "dropbox"
    sftp = f"""
[partners.sftp]
poll_interval_s = 0.2
settle_s = 1
[partners.sftp.hosted]
authorized_keys = ["{acme_public}"]
"""
    extra = f'[sftp_dropbox]\nhost_key = {{ file = "box.key" }}\nport = 0\nroot = "{box}"\n'
    path = write_config(
        tmp_path, amqp_url, [ACME], extra=extra, partner_extra=sftp + rules(tmp_path)
    )
    config = load(path)

    async with bound_queue(amqp_url, "test.files.dropbox") as queue, running(config) as gateway:
        assert gateway.drop_box_port
        async with (
            asyncssh.connect(
                "127.0.0.1",
                gateway.drop_box_port,
                username="acme",
                client_keys=[asyncssh.import_private_key(acme_private)],
                known_hosts=([asyncssh.import_public_key(box_public)], [], []),
                agent_path=None,
                config=[],
            ) as conn,
            conn.start_sftp_client() as sftp_client,
        ):
            # The partner's manners: write under a temporary name, rename when complete.
            async with sftp_client.open("/incoming/stock_1.csv.part", "w") as upload:
                await upload.write(STOCK)
            await sftp_client.rename("/incoming/stock_1.csv.part", "/incoming/stock_1.csv")
            await until(lambda: names(box / "acme" / "archive") == ["stock_1.csv"], "archived")
            seen = await sftp_client.listdir("/archive")
        messages = await drain(queue, expect=STOCK_MESSAGES)

    assert positions(messages) == EXPECTED
    assert "stock_1.csv" in seen  # the partner sees its file archived
    assert names(box / "acme" / "incoming") == []
    assert received(config) == [("stock_1.csv", "accepted", 2, "done")]
