"""What the file channel tests share: a partner's folder, a poller on a clock the test moves,
a CSV feed of stock positions, reads of what the store committed, a bounded wait for what a
running gateway does, and the `[partners.sftp]` table that points a partner at a real sshd."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import anyio
import pytest
from sshd import LocalSshd

from actors.files.formats import DECODERS, FileRule
from actors.files.intake import FileIntake
from actors.files.poller import ChannelPolicy, FilePoller, RoundReport
from actors.files.source import FileSource, Folder
from canonical.csv import CsvFeed, ItemCrossReference, cross_reference
from canonical.files import RemoteFile
from gateway.file_channels import StoreReceivedFiles
from gateway.store import Store
from protocols.files import LocalFolderSource

PARTNER = "acme"
HEADER = "Item,Warehouse,Qty,Unit,Date\n"
SETTLE_S = 1.0

FEED = CsvFeed(
    document_type="inventory_position",
    columns={
        "Item": "sku",
        "Warehouse": "location_id",
        "Qty": "on_hand",
        "Unit": "uom",
        "Date": "as_of",
    },
    items=cross_reference(
        [
            ItemCrossReference(
                supplier_sku="S-1",
                sku="SKU-1",
                stocking_uom="EA",
                units_per_pack=Decimal(12),
                pack_uom="CS",
            ),
            ItemCrossReference(supplier_sku="S-2", sku="SKU-2", stocking_uom="EA"),
        ]
    ),
)
RULES = (
    FileRule(pattern="stock_*.csv", document_type="inventory_position", format="csv", options=FEED),
)


def row(sku: str = "S-1", qty: str = "2", unit: str = "CS", location: str = "DC1") -> str:
    return f"{sku},{location},{qty},{unit},2026-12-01T08:00:00Z\n"


class Clock:
    """A monotonic clock the test moves: settling takes no real time."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FlakyMoves:
    """A `FileSource` whose next `failures` moves fail as a dropped connection would."""

    def __init__(self, inner: LocalFolderSource, failures: int = 0) -> None:
        self.inner = inner
        self.failures = failures
        self.moves: list[tuple[str, Folder]] = []

    async def list_incoming(self) -> list[RemoteFile]:
        return await self.inner.list_incoming()

    async def fetch(self, name: str, destination: Path, *, max_bytes: int) -> None:
        await self.inner.fetch(name, destination, max_bytes=max_bytes)

    async def move(self, name: str, folder: Folder) -> bool:
        if self.failures:
            self.failures -= 1
            raise ConnectionResetError("connection lost")
        self.moves.append((name, folder))
        return await self.inner.move(name, folder)

    async def put(self, name: str, body: bytes) -> str:
        return await self.inner.put(name, body)


class Channel:
    """One partner's folder and the poller over it, with a clock the test moves."""

    def __init__(
        self, root: Path, store: Store, *, source: FileSource | None = None, **policy: object
    ) -> None:
        self.folder = LocalFolderSource(root / "partner")
        self.clock = Clock()
        files = StoreReceivedFiles(store.files)
        settings: dict[str, object] = {"settle_s": SETTLE_S, **policy}
        decoders = settings.pop("decoders", DECODERS)
        rules = settings.pop("rules", RULES)
        stage_rows = int(settings.pop("stage_rows", 500))  # type: ignore[call-overload]
        max_problems = int(settings.pop("max_problems", 1000))  # type: ignore[call-overload]
        self.poller = FilePoller(
            source or self.folder,
            FileIntake(
                files,
                partner_id=PARTNER,
                channel="files",
                stage_rows=stage_rows,
                max_problems=max_problems,
                decoders=decoders,  # type: ignore[arg-type]
            ),
            files,
            ChannelPolicy(
                partner_id=PARTNER,
                channel="files",
                rules=rules,  # type: ignore[arg-type]
                spool_dir=root / "spool",
                **settings,  # type: ignore[arg-type]
            ),
            clock=self.clock,
        )
        self.poller.policy.spool_dir.mkdir(parents=True, exist_ok=True)

    def drop(self, name: str, text: str, *, mtime: int = 1_780_000_000) -> Path:
        """Put a complete file in incoming/ (written, then given `mtime`)."""
        path = self.folder.folder("incoming") / name
        path.write_text(text, encoding="utf-8")
        os.utime(path, (mtime, mtime))
        return path

    async def settle(self) -> RoundReport:
        """Two rounds `SETTLE_S` apart: what was complete at the first is taken at the second."""
        await self.poller.poll_once()
        self.clock.now += SETTLE_S
        return await self.poller.poll_once()

    def names(self, folder: str) -> list[str]:
        return sorted(os.listdir(self.folder.root / folder))


def select(db: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchall()


async def until(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Poll `check` until it holds; fail the test naming `what` after `timeout` seconds."""
    try:
        with anyio.fail_after(timeout):
            while not check():
                await anyio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"not within {timeout} s: {what}")


def sftp_server_table(folder: Path, server: LocalSshd, *, poll_interval_s: float = 0.2) -> str:
    """The `[partners.sftp]` TOML of a partner whose files are on `server` (its host key pinned,
    loopback allowed, the client key written beside the config as a secret file)."""
    (folder / "acme.key").write_text(server.client_key)
    return f"""
[partners.sftp]
poll_interval_s = {poll_interval_s}
settle_s = 1
[partners.sftp.server]
host = "127.0.0.1"
port = {server.port}
username = "{server.username}"
host_key = "{server.host_key}"
private_key = {{ file = "acme.key" }}
allow_networks = ["127.0.0.0/8"]
connect_timeout_s = 2
operation_timeout_s = 5
"""
