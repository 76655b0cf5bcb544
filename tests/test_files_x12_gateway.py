"""X12 files in the running gateway, against the real RabbitMQ node: a supplier's 855/856/810
file becomes messages on the queue once and is answered with a 997; a replay gets TA1 025; a
purchase order the ERP releases goes out to the supplier as an 850 file."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import anyio
import orjson
import pytest
from configkit import supplier, x12_files
from gatewaykit import Partner, bound_queue, drain, erp_supplier, load, running, write_config
from test_erp_ingress_gateway import Erp
from x12_channel import supplier_file

from canonical import sample_body
from canonical.x12 import decode_file

pytestmark = [pytest.mark.anyio, pytest.mark.rabbitmq]

ACME = Partner("acme")


async def until(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    try:
        with anyio.fail_after(timeout):
            while not check():
                await anyio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"not within {timeout} s: {what}")


def drop(folder: Path, name: str, text: str, mtime: int) -> None:
    path = folder / "incoming" / name
    path.write_bytes(text.encode("latin-1"))
    os.utime(path, (mtime, mtime))


def outbound(folder: Path, prefix: str) -> list[Path]:
    return sorted(p for p in (folder / "outbound").iterdir() if p.name.startswith(prefix))


async def test_a_suppliers_x12_file_reaches_the_queue_once_and_is_answered(
    tmp_path: Path, amqp_url: str
) -> None:
    folder = tmp_path / "acme"
    path = write_config(tmp_path, amqp_url, [ACME], partner_extra=supplier(x12_files(folder)))
    config = load(path)
    async with bound_queue(amqp_url, "test.files.x12") as queue, running(config):
        drop(folder, "supplier_1.x12", supplier_file("000000100"), 1_780_000_000)
        await until(lambda: os.listdir(folder / "archive") == ["supplier_1.x12"], "archived")
        first = await drain(queue, expect=3)
        await until(lambda: len(outbound(folder, "997")) == 1, "the 997 put back")

        # The same file again: nothing new. Then the same ISA13 in another file: TA1 025.
        drop(folder, "supplier_1.x12", supplier_file("000000100"), 1_780_000_000)
        await until(lambda: len(os.listdir(folder / "archive")) == 2, "the duplicate archived")
        drop(folder, "resent.x12", supplier_file("000000100"), 1_780_000_900)
        await until(lambda: os.listdir(folder / "error") == ["resent.x12"], "the replay refused")
        await until(lambda: len(outbound(folder, "TA1")) == 1, "the TA1 put back")
        later = await drain(queue, expect=1, timeout=10.0)

    assert sorted(m.routing_key or "" for m in first) == [
        "advance_ship_notice.acme",
        "invoice.acme",
        "purchase_order_ack.acme",
    ]
    provenance = [orjson.loads(m.body)["provenance"] for m in first]
    assert {(p["file"], p["interchange"]) for p in provenance} == {("supplier_1.x12", "000000100")}
    (ack_path,) = outbound(folder, "997")
    ack = decode_file(ack_path.read_bytes(), file_name=ack_path.name, sha256="0" * 64)
    assert [(g.control_number, g.status) for g in ack.functional_acks] == [
        ("200", "A"),
        ("201", "A"),
        ("202", "A"),
    ]
    (ta1_path,) = outbound(folder, "TA1")
    assert b"TA1*000000100*260309*0815*R*025" in ta1_path.read_bytes()
    # Only the replay's exception reached the queue after the first file.
    assert [m.routing_key for m in later] == ["exception.acme"]


async def test_a_released_purchase_order_goes_to_the_supplier_as_an_850_file(
    tmp_path: Path, amqp_url: str
) -> None:
    erp = Erp()
    folder = tmp_path / "acme"
    path = erp_supplier(tmp_path, amqp_url, erp, x12_files(folder))
    body = sample_body("purchase_order", 11, supplier="acme")
    async with running(load(path)) as gateway:
        await until(
            lambda: all(c.statistics().consuming for c in gateway.erp_consumers), "consuming"
        )
        await erp.publish(amqp_url, body, "erp-po-11")
        await erp.publish(amqp_url, body, "erp-po-11")  # the ERP's own retry
        await until(lambda: len(outbound(folder, "850")) == 1, "the 850 put")
        assert gateway.store is not None
        sent = await gateway.store.edi.sent()

    (file,) = outbound(folder, "850")
    reading = decode_file(file.read_bytes(), file_name=file.name, sha256="0" * 64)
    assert reading.accepted
    (document,) = [d.document for d in reading.decoding.documents]
    assert document.po_number == orjson.loads(body)["po_number"]  # type: ignore[union-attr]
    assert [(s.set_id, s.status, s.interchange) for s in sent] == [
        ("850", "unacknowledged", "000000001")
    ]
