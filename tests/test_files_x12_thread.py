"""A purchase order's thread over X12 files, in the running gateway (real RabbitMQ): the ERP
releases the order, it goes to the supplier as an 850 file; the supplier drops its 855 as an
X12 file, which acknowledges the thread, and its 997 for our 850 settles the set sent."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import anyio
import pytest
from configkit import base, compose, erp_section, partner, workflow, x12_files
from gatewaykit import Partner, load
from test_erp_ingress_gateway import Erp, until
from test_workflow_gateway import until_status
from workflow_documents import T0, ack, order
from workflow_kit import clock_from

from canonical import encode_document
from canonical.x12 import (
    ControlNumbers,
    X12Profile,
    decode_file,
    encode_interchange,
    render_acknowledgements,
)
from gateway.app import Gateway

pytestmark = [pytest.mark.anyio, pytest.mark.rabbitmq]

ACME = Partner("acme")
# The supplier's side of the exchange: its ids are ours swapped.
SUPPLIER = X12Profile(sender_id="ACMESUPPLY", receiver_id="DISTCO")


def config_text(tmp_path: Path, amqp_url: str, erp: Erp, folder: Path) -> str:
    """acme supplies over X12 files in `folder`; the thread's feed read fast."""
    return compose(
        base(tmp_path, amqp_url, log_level="WARNING"),
        erp_section(erp),
        workflow(),
        partner(
            ACME.id,
            [ACME.secret],
            name="Acme Supplies",
            sends=["purchase_order_ack", "advance_ship_notice", "invoice"],
            receives=["purchase_order"],
            per_second=None,
            extra=x12_files(folder),
        ),
    )


def drop(folder: Path, name: str, data: bytes) -> None:
    path = folder / "incoming" / name
    path.write_bytes(data)
    os.utime(path, (1_780_000_000, 1_780_000_000))


async def test_an_x12_855_acknowledges_the_thread_of_an_order_sent_as_an_850(
    tmp_path: Path, amqp_url: str
) -> None:
    po = order(41)
    erp = Erp()
    folder = tmp_path / "acme"
    config_path = tmp_path / "gateway.toml"
    config_path.write_text(config_text(tmp_path, amqp_url, erp, folder))
    gateway = Gateway(load(config_path), clock=clock_from(T0))
    at = dt.datetime(2026, 3, 2, 10, tzinfo=dt.UTC)
    async with anyio.create_task_group() as running:
        await running.start(gateway.run)
        await until(lambda: all(c.statistics().consuming for c in gateway.erp_consumers))
        await erp.publish(amqp_url, encode_document(po), "erp-po-41")
        await until_status(gateway, po.po_number, "sent")
        await until(lambda: any(n.startswith("850") for n in os.listdir(folder / "outbound")))
        (sent_name,) = [n for n in os.listdir(folder / "outbound") if n.startswith("850")]
        sent = (folder / "outbound" / sent_name).read_bytes()

        # The supplier reads our 850, answers it with its 997 and its 855, as files.
        as_received = decode_file(sent, file_name=sent_name, sha256="0" * 64, profile=SUPPLIER)
        (their_997,) = render_acknowledgements(
            as_received, ControlNumbers(interchange=7001, group=7001), at=at
        )
        their_855 = encode_interchange(
            [ack(po)], SUPPLIER, ControlNumbers(interchange=7002, group=7002), at=at
        )
        drop(folder, "997_7001.x12", their_997)
        drop(folder, "855_7002.x12", their_855.data)

        await until_status(gateway, po.po_number, "acknowledged")
        assert gateway.store is not None
        store = gateway.store

        async def settled() -> bool:
            return [s.status for s in await store.edi.sent()] == ["accepted"]

        with anyio.fail_after(20):
            while not await settled():
                await anyio.sleep(0.05)
        await until(lambda: len(os.listdir(folder / "archive")) == 2)
        gateway.stop()

    assert [d.document for d in as_received.decoding.documents] == [po]
    # Our 997 for their 855 went back too (and none for their 997).
    answers = sorted(n for n in os.listdir(folder / "outbound") if n.startswith("997"))
    assert len(answers) == 1
