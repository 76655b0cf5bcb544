"""A partner's file channel in the running gateway, against the real RabbitMQ node: a CSV file
dropped in the partner's folder becomes messages on the queue, each with its provenance, once."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import anyio
import orjson
import pytest
from files_support import HEADER, row
from gatewaykit import Partner, bound_queue, drain, load, running, write_config

pytestmark = [pytest.mark.anyio, pytest.mark.rabbitmq]

ACME = Partner("acme")


def channel_config(folder: Path, items: Path) -> str:
    items.write_text(
        "supplier_sku,sku,stocking_uom,units_per_pack,pack_uom\nS-1,SKU-1,EA,12,CS\nS-2,SKU-2,EA,1,\n",
        encoding="utf-8",
    )
    return f"""
[partners.files]
folder = "{folder}"
poll_interval_s = 0.1
settle_s = 1

[[partners.files.rules]]
pattern = "stock_*.csv"
document_type = "inventory_position"
format = "csv"

[partners.files.rules.csv]
columns = {{ "Item" = "sku", "Warehouse" = "location_id", "Qty" = "on_hand", "Unit" = "uom", \
"Date" = "as_of" }}
items_file = "{items}"
"""


async def until(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    try:
        with anyio.fail_after(timeout):
            while not check():
                await anyio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"not within {timeout} s: {what}")


async def test_a_dropped_csv_file_reaches_the_queue_once_with_provenance(
    tmp_path: Path, amqp_url: str
) -> None:
    folder = tmp_path / "acme"
    config = load(
        write_config(
            tmp_path,
            amqp_url,
            [ACME],
            partner_extra=channel_config(folder, tmp_path / "items.csv"),
        )
    )
    text = HEADER + row("S-1", "2") + row("S-7", "1") + row("S-2", "5", "EA")
    async with bound_queue(amqp_url, "test.files.gateway") as queue, running(config):
        incoming = folder / "incoming"
        (incoming / "stock_1.csv").write_text(text, encoding="utf-8")
        await until(lambda: os.listdir(folder / "archive") == ["stock_1.csv"], "archived")

        first = await drain(queue, expect=3)

        # The same file again (same name, size, mtime, content): nothing new.
        again = incoming / "stock_1.csv"
        again.write_text(text, encoding="utf-8")
        stat = (folder / "archive" / "stock_1.csv").stat()
        os.utime(again, (stat.st_atime, stat.st_mtime))
        await until(lambda: len(os.listdir(folder / "archive")) == 2, "the duplicate archived")
        second = await drain(queue, expect=0, timeout=1.0)

    bodies = [orjson.loads(m.body) for m in first]
    assert sorted((m.routing_key or "") for m in first) == [
        "exception.acme",
        "inventory_position.acme",
        "inventory_position.acme",
    ]
    positions = [b for b in bodies if b["document_type"] == "inventory_position"]
    assert [(b["document"]["sku"], b["document"]["on_hand"]) for b in positions] == [
        ("SKU-1", "24"),
        ("SKU-2", "5"),
    ]
    assert [(b["provenance"]["file"], b["provenance"]["line"]) for b in bodies] == [
        ("stock_1.csv", 2),
        ("stock_1.csv", 3),
        ("stock_1.csv", 4),
    ]
    [notice] = [b for b in bodies if b["document_type"] == "exception"]
    assert "line 3" in notice["document"]["description"]
    assert second == []
