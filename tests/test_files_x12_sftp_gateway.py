"""One purchase order thread in X12 over the partner's own SFTP server, end to end: the running
gateway, the real sshd (tests/sshd.py) and the real RabbitMQ node. The ERP releases a PO and an
850 lands, complete and well enveloped, in the partner's outbound folder on the server; the
partner answers with 855, 856 and 810 in its incoming folder, which are taken once, reach the
queue, are archived there and answered with a 997; the same file again brings nothing new; a
replayed interchange control number gets TA1 025; a set in error gets a 997 with AK3/AK4, an
exception on the queue, and its file goes to error/."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest
from aio_pika.abc import AbstractIncomingMessage
from configkit import workflow, x12_files
from files_support import select, sftp_server_table, until
from gatewaykit import bound_queue, drain, erp_supplier, load, running
from sshd import LocalSshd
from test_erp_ingress_gateway import Erp
from x12_channel import supplier_file

from canonical import sample_body
from canonical.orders import PurchaseOrder
from canonical.x12 import X12Reading, decode_file

pytestmark = [pytest.mark.anyio, pytest.mark.rabbitmq]

MTIME = 1_780_000_000
# The supplier's sample interchange (tests/x12_samples/855_856_810.x12) answers PO-0000007.
PO = 7


def ack_in_error(control: str) -> str:
    """The sample's 855 group alone in interchange `control`, its BAK09 date impossible."""
    lines = supplier_file(control).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("GS*PR*"))
    end = next(i for i, line in enumerate(lines) if line.startswith("GE*1*200"))
    body = [line.replace("*****20260303~", "*****20261345~") for line in lines[start : end + 1]]
    return "\n".join([lines[0], *body, f"IEA*1*{control}~"]) + "\n"


def drop(server: LocalSshd, name: str, text: str, mtime: int = MTIME) -> None:
    """The partner leaves a complete file in its incoming folder on its server."""
    path = server.folder("incoming") / name
    path.write_bytes(text.encode("latin-1"))
    os.utime(path, (mtime, mtime))


def names(server: LocalSshd, folder: str) -> list[str]:
    return sorted(os.listdir(server.folder(folder)))


def sent(server: LocalSshd, prefix: str) -> list[Path]:
    """The files the gateway put in the server's outbound folder whose name starts `prefix`."""
    out = server.folder("outbound")
    return sorted(out / name for name in os.listdir(out) if name.startswith(prefix))


def read(path: Path) -> X12Reading:
    return decode_file(path.read_bytes(), file_name=path.name, sha256="0" * 64)


def keys(messages: list[AbstractIncomingMessage]) -> list[str]:
    return sorted(m.routing_key or "" for m in messages)


async def test_a_po_thread_in_x12_over_the_partners_sftp_server(
    tmp_path: Path, amqp_url: str, sftp_server: LocalSshd
) -> None:
    erp = Erp()
    channel = sftp_server_table(tmp_path, sftp_server) + x12_files()
    # The PO thread's own exceptions (quantities short, lines rejected: test_workflow_gateway.py)
    # would share the queue with the file channel's: off, so what is counted here is the files'.
    path = erp_supplier(tmp_path, amqp_url, erp, channel, extra=workflow(enabled=False))
    config = load(path)
    body = sample_body("purchase_order", PO, supplier="acme")
    # What the supplier's files make (`*.acme`); the ERP's PO goes to the supplier as a file.
    async with (
        bound_queue(amqp_url, "test.files.x12.sftp", "*.acme") as queue,
        running(config) as gw,
    ):
        await until(lambda: all(c.statistics().consuming for c in gw.erp_consumers), "consuming")

        # The ERP releases the PO (and retries it): one 850 on the partner's server.
        await erp.publish(amqp_url, body, "erp-po-7")
        await erp.publish(amqp_url, body, "erp-po-7")
        await until(lambda: len(sent(sftp_server, "850")) == 1, "the 850 put on the server")

        # The supplier answers with 855, 856 and 810 in one interchange.
        drop(sftp_server, "supplier_1.x12", supplier_file("000000100"))
        await until(lambda: names(sftp_server, "archive") == ["supplier_1.x12"], "archived")
        answered = await drain(queue, expect=3)
        await until(lambda: len(sent(sftp_server, "997")) == 1, "the 997 put on the server")

        # The same file again: archived beside the first, nothing committed (the outbox, below;
        # the relay publishes in commit order, so anything it made would precede the replay's
        # exception in the next drain).
        drop(sftp_server, "supplier_1.x12", supplier_file("000000100"))
        await until(lambda: len(names(sftp_server, "archive")) == 2, "the duplicate archived")

        # Another file reusing the interchange control number: refused with TA1 025.
        drop(sftp_server, "resent.x12", supplier_file("000000100"), MTIME + 900)
        await until(lambda: names(sftp_server, "error") == ["resent.x12"], "the replay refused")
        await until(lambda: len(sent(sftp_server, "TA1")) == 1, "the TA1 put on the server")
        replay = await drain(queue, expect=1)

        # An 855 whose date cannot be: rejected set, 997 with AK3/AK4, exception, error/.
        drop(sftp_server, "ack_bad.x12", ack_in_error("000000101"), MTIME + 1800)
        await until(lambda: "ack_bad.x12" in names(sftp_server, "error"), "the bad set's file")
        await until(lambda: len(sent(sftp_server, "997")) == 2, "the second 997 put")
        rejected = await drain(queue, expect=1)

    # The store's record: each file once (the duplicate recognised, never a row of its own),
    # each set committed once, beside the ERP's PO and the two files' exceptions.
    db = Path(config.store.path)
    assert select(db, "SELECT path, state, documents, folder FROM received_files ORDER BY id") == [
        ("supplier_1.x12", "accepted", 3, "archive"),
        ("resent.x12", "refused", 0, "error"),
        ("ack_bad.x12", "accepted", 0, "error"),
    ]
    assert select(db, "SELECT document_type, partner_id FROM outbox ORDER BY seq") == [
        ("purchase_order", "erp"),
        ("purchase_order_ack", "acme"),
        ("advance_ship_notice", "acme"),
        ("invoice", "acme"),
        ("exception", "acme"),
        ("exception", "acme"),
    ]

    # The 850: complete, a valid envelope to the supplier, the PO the ERP released.
    (po_file,) = sent(sftp_server, "850")
    po_reading = read(po_file)
    assert po_reading.accepted, po_reading.problems
    (interchange,) = po_reading.interchanges
    assert (interchange.header.sender_id, interchange.header.receiver_id) == (
        "DISTCO",
        "ACMESUPPLY",
    )
    (po,) = [d.document for d in po_reading.decoding.documents]
    assert isinstance(po, PurchaseOrder)
    assert po.po_number == orjson.loads(body)["po_number"] == "PO-0000007"

    # The supplier's answers: each set once on the queue, with its file's provenance.
    assert keys(answered) == [
        "advance_ship_notice.acme",
        "invoice.acme",
        "purchase_order_ack.acme",
    ]
    provenance = [orjson.loads(m.body)["provenance"] for m in answered]
    assert {(p["file"], p["interchange"]) for p in provenance} == {("supplier_1.x12", "000000100")}
    assert names(sftp_server, "archive") == ["supplier_1-1.x12", "supplier_1.x12"]
    first_ack, second_ack = (read(path) for path in sent(sftp_server, "997"))
    assert [(g.control_number, g.status) for g in first_ack.functional_acks] == [
        ("200", "A"),
        ("201", "A"),
        ("202", "A"),
    ]

    # The replay: a TA1 025 for interchange 000000100 and one exception.
    (ta1,) = sent(sftp_server, "TA1")
    assert b"TA1*000000100*260309*0815*R*025" in ta1.read_bytes()
    assert keys(replay) == ["exception.acme"]

    # The set in error: the 997 names the segment and element, the group rejected.
    (group,) = second_ack.functional_acks
    assert (group.control_number, group.status) == ("200", "R")
    raw = sent(sftp_server, "997")[1].read_text("latin-1")
    for segment in ("AK3*BAK*2**8~", "AK4*9**8*20261345~", "AK5*R"):
        assert segment in raw
    assert keys(rejected) == ["exception.acme"]
    assert "0001" in orjson.loads(rejected[0].body)["document"]["description"]
    assert names(sftp_server, "incoming") == []
