"""A reload swaps a partner's file channel (`FileChannels.adopt`): the poller of a changed partner
stops once the file it is taking is committed under the old rules, then the new one takes over;
an unchanged partner's poller runs on."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import anyio
import pytest
from files_support import until

from actors.files.source import FileSource, Folder
from canonical.files import RemoteFile
from gateway.config import GatewayConfig, load_config
from gateway.file_channels import FileChannels
from gateway.store import Store
from gateway.store.files import ReceivedFile

pytestmark = pytest.mark.anyio

SECRETS = {p: "whsec_" + base64.b64encode(os.urandom(32)).decode() for p in ("acme", "globex")}


def partner(partner_id: str, folder: Path, quantity: str) -> str:
    """A partner whose stock files name their quantity column `quantity`."""
    return f"""
[[partners]]
id = "{partner_id}"
name = "{partner_id}"
secrets = ["{SECRETS[partner_id]}"]
sends = ["inventory_position"]
[partners.files]
folder = "{folder}"
poll_interval_s = 0.1
settle_s = 1
[[partners.files.rules]]
pattern = "stock_*.csv"
document_type = "inventory_position"
[partners.files.rules.csv]
columns = {{ "Item" = "sku", "Warehouse" = "location_id", "{quantity}" = "on_hand", \
"Unit" = "uom", "Date" = "as_of" }}
"""


def config(tmp_path: Path, name: str, *partners: str) -> GatewayConfig:
    path = tmp_path / name
    path.write_text(
        f'[amqp]\nurl = "amqp://gw:pw@127.0.0.1:5672/%2F"\n[store]\npath = "{tmp_path / "gw.db"}"\n'
        + "".join(partners)
    )
    return load_config(path, {})


def stock(quantity: str, *skus: str) -> str:
    return f"Item,Warehouse,{quantity},Unit,Date\n" + "".join(
        f"{sku},DC1,5,EA,2026-12-01T08:00:00Z\n" for sku in skus
    )


class Gated:
    """A partner's folder whose fetches wait for `release`: a file is being taken meanwhile."""

    def __init__(self, inner: FileSource) -> None:
        self.inner = inner
        self.fetching = anyio.Event()
        self.release = anyio.Event()

    async def list_incoming(self) -> list[RemoteFile]:
        return await self.inner.list_incoming()

    async def fetch(self, name: str, destination: Path, *, max_bytes: int) -> None:
        self.fetching.set()
        await self.release.wait()
        await self.inner.fetch(name, destination, max_bytes=max_bytes)

    async def move(self, name: str, folder: Folder) -> bool:
        return await self.inner.move(name, folder)

    async def put(self, name: str, body: bytes) -> str:
        return await self.inner.put(name, body)


def taken(folder: Path) -> list[str]:
    """The files moved out of incoming/ once committed, in archive/ or error/."""
    return sorted(os.listdir(folder / "archive") + os.listdir(folder / "error"))


def by_name(files: list[ReceivedFile]) -> dict[str, tuple[str, int, int]]:
    return {f.path: (f.state, f.documents, f.problems) for f in files}


async def test_a_renamed_column_applies_to_files_after_the_swap_and_the_file_in_hand_commits_once(
    tmp_path: Path,
) -> None:
    acme, globex = tmp_path / "acme", tmp_path / "globex"
    old = config(
        tmp_path, "old.toml", partner("acme", acme, "Qty"), partner("globex", globex, "Qty")
    )
    new = config(
        tmp_path, "new.toml", partner("acme", acme, "Quantity"), partner("globex", globex, "Qty")
    )
    async with Store(str(tmp_path / "gw.db")) as store, anyio.create_task_group() as tg:
        channels = FileChannels(old, store)
        gated = Gated(channels.poller("acme").source)
        channels.poller("acme").source = gated
        globex_poller = channels.poller("globex")
        await tg.start(channels.run)
        (acme / "incoming" / "stock_1.csv").write_text(stock("Qty", "S-1", "S-2"))
        with anyio.fail_after(10):
            await gated.fetching.wait()

        changed = {p.id for p in new.partners if p not in old.partners}
        channels.adopt(FileChannels(new, store), changed)
        (acme / "incoming" / "stock_2.csv").write_text(stock("Quantity", "S-3"))
        (globex / "incoming" / "stock_1.csv").write_text(stock("Qty", "G-1"))
        # Past settle_s: a poller started at once would take stock_1 too, under the new rules.
        await anyio.sleep(1.5)
        gated.release.set()

        await until(lambda: len(taken(acme)) == 2, "acme's two files")
        await until(lambda: taken(globex) == ["stock_1.csv"], "globex's file")
        acme_files = await store.files.received("acme")
        tg.cancel_scope.cancel()

    assert changed == {"acme"}
    assert by_name(acme_files) == {
        "stock_1.csv": ("accepted", 2, 0),  # under the old mapping, once
        "stock_2.csv": ("accepted", 1, 0),  # under the new one
    }
    assert sorted(os.listdir(acme / "archive")) == ["stock_1.csv", "stock_2.csv"]
    assert channels.poller("globex") is globex_poller  # never restarted
