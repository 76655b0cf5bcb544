"""Purchase orders delivered as X12 files, and what the partner's 997s say of them.

The delivery writes one interchange per order into the store's files to send (numbers from
the partner's sequences); the partner's file channel poller puts it in the outbound folder
(a local folder here, a real sshd below); a 997 the partner drops back is matched to each set
by (GS06, ST02); what stays unanswered, or is rejected, is a metric, an exception and a CLI
line.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from files_support import PARTNER, select
from prometheus_client import CollectorRegistry, Gauge
from sshd import LocalSshd
from x12_channel import X12Channel
from x12_text import group, isa

from actors.delivery import Delivered, Refused
from canonical import PurchaseOrder, decode_envelope, encode_envelope, new_envelope
from canonical.delivery import DeliveryRecord
from canonical.samples import sample_document
from canonical.x12 import X12Profile, decode_file
from gateway.config import load_config
from gateway.edi_delivery import X12FileDelivery
from gateway.edi_watch import AcknowledgementWatch
from gateway.store import Store
from protocols.sftp import SftpSource

pytestmark = pytest.mark.anyio

PROFILE = X12Profile(sender_id="DISTCO", receiver_id="ACMESUPPLY")
REPO = Path(__file__).resolve().parents[1]


def order(n: int) -> tuple[PurchaseOrder, DeliveryRecord]:
    """A purchase order and the delivery record the courier hands the channel."""
    document = sample_document("purchase_order", n)
    assert isinstance(document, PurchaseOrder)
    envelope = new_envelope(document, partner_id="distco", idempotency_key=f"po-{n}")
    record = DeliveryRecord(
        id=n,
        partner_id=PARTNER,
        message_id=envelope.message_id,
        document_type="purchase_order",
        aggregate_key=f"po:{document.po_number}",
        correlation_id=envelope.correlation_id,
        body=encode_envelope(envelope),
        state="pending",
        attempts=0,
        next_attempt_at=0.0,
        created_at=0.0,
    )
    return document, record


def functional_ack(group_number: str, *, rejected: bool, control: str = "000000900") -> str:
    """The partner's 997 for our PO group `group_number` (one set, ST02 0001)."""
    if rejected:
        body = ["AK2*850*0001", "AK3*PO1*6**8", "AK4*4**4*0", "AK5*R*5", "AK9*R*1*1*0"]
    else:
        body = ["AK2*850*0001", "AK5*A", "AK9*A*1*1*1"]
    st = ["ST*997*0001", f"AK1*PO*{group_number}", *body, f"SE*{len(body) + 3}*0001"]
    segments = group([st], control="900", functional_id="FA")
    text = "".join(segment + "~\n" for segment in segments)
    return isa(control) + "\n" + text + f"IEA*1*{control}~\n"


async def test_a_purchase_order_delivered_as_x12_lands_as_one_complete_interchange(
    tmp_path: Path,
) -> None:
    document, record = order(1)
    async with Store(tmp_path / "gateway.db") as store:
        channel = X12Channel(tmp_path, store)
        delivery = X12FileDelivery(store, PARTNER, PROFILE)

        answer = await delivery.send(record, 0)
        again = await delivery.send(record, 0)  # a retry after a lost settlement
        round_ = await channel.poller.poll_once()

        assert isinstance(answer, Delivered)
        assert answer.status is None  # a file has no status code to fake
        assert answer.detail == b"queued 850_000000001.x12"
        assert again.detail == answer.detail
        assert round_.put == ["850_000000001.x12"]
        assert channel.names("outbound") == ["850_000000001.x12"]
        data = (channel.folder.folder("outbound") / "850_000000001.x12").read_bytes()
    reading = decode_file(data, file_name="850.x12", sha256="0" * 64)
    assert reading.accepted
    (interchange,) = reading.interchanges
    assert (interchange.header.sender_id, interchange.header.receiver_id) == (
        "DISTCO",
        "ACMESUPPLY",
    )
    assert interchange.header.control_number == "000000001"
    assert [d.document for d in reading.decoding.documents] == [document]


async def test_a_document_x12_cannot_carry_is_refused_at_once(tmp_path: Path) -> None:
    _, record = order(2)
    notice = sample_document("exception")
    envelope = new_envelope(notice, partner_id="distco", idempotency_key="x")
    bad = DeliveryRecord(
        **{
            **{f: getattr(record, f) for f in record.__struct_fields__},
            "body": encode_envelope(envelope),
            "document_type": "exception",
        }
    )
    async with Store(tmp_path / "gateway.db") as store:
        outcome = await X12FileDelivery(store, PARTNER, PROFILE).send(bad, 0)
        assert isinstance(outcome, Refused)
        assert outcome.reason.startswith("x12")
        assert await store.edi.sent() == []


@pytest.mark.parametrize(("rejected", "status"), [(False, "accepted"), (True, "rejected")])
async def test_the_partners_997_settles_each_set_sent(
    tmp_path: Path, rejected: bool, status: str
) -> None:
    db = tmp_path / "gateway.db"
    async with Store(db) as store:
        channel = X12Channel(tmp_path, store)
        await X12FileDelivery(store, PARTNER, PROFILE).send(order(1)[1], 0)
        await X12FileDelivery(store, PARTNER, PROFILE).send(order(2)[1], 0)
        (first, second) = await store.edi.sent()
        channel.drop("997_1.x12", functional_ack(first.group, rejected=rejected))

        report = await channel.settle()

        assert [(r.outcome, r.documents) for _, r in report.taken] == [("accepted", 0)]
        settled = {s.group: s for s in await store.edi.sent()}
        # A 997 is never answered: nothing goes back for it.
        assert [name for name in channel.names("outbound") if name.startswith("997")] == []
    assert settled[first.group].status == status
    assert settled[second.group].status == "unacknowledged"
    if rejected:
        assert settled[first.group].codes == ("5",)
        (note,) = settled[first.group].notes
        assert (note["segment_id"], note["position"], note["elements"][0]["code"]) == (
            "PO1",
            6,
            "4",
        )
    assert select(db, "SELECT count(*) FROM edi_sent_sets") == [(2,)]


async def test_sets_rejected_or_unanswered_too_long_are_raised_once_and_counted(
    tmp_path: Path,
) -> None:
    db = tmp_path / "gateway.db"
    config = load_config(write_partner_config(tmp_path), {})
    (partner,) = config.partners
    gauge = Gauge("unacked", "test", ["partner"], registry=CollectorRegistry())
    async with Store(db) as store:
        channel = X12Channel(tmp_path, store)
        for n in (1, 2, 3):
            await X12FileDelivery(store, PARTNER, PROFILE).send(order(n)[1], 0)
        first, second, _ = await store.edi.sent()
        channel.drop("997_1.x12", functional_ack(first.group, rejected=True))
        channel.drop("997_2.x12", functional_ack(second.group, rejected=False, control="000000901"))
        await channel.settle()
        late = AcknowledgementWatch(
            store, [partner], gauge=gauge, clock=lambda: first.sent_at + 2 * 86400
        )

        raised = await late.sweep()
        again = await late.sweep()

    assert (raised, again) == (2, 0)
    assert gauge.labels(PARTNER)._value.get() == 1  # the third set: sent, never answered
    notices = [
        decode_envelope(bytes(body)).document  # type: ignore[call-overload]
        for (body,) in select(db, "SELECT body FROM outbox WHERE document_type = 'exception'")
    ]
    kinds = sorted((n.kind, n.reference.message_id is not None) for n in notices)  # type: ignore[union-attr]
    assert kinds == [("delivery_failed", True), ("late_acknowledgement", True)]


def write_partner_config(folder: Path) -> Path:
    path = folder / "gateway.toml"
    path.write_text(
        f"""
[store]
path = "{folder / "gateway.db"}"

[amqp]
url = "amqp://guest:guest@127.0.0.1:1/"

[[partners]]
id = "{PARTNER}"
name = "Acme"
secrets = ["whsec_{"A" * 32}"]
sends = ["purchase_order_ack"]
receives = ["purchase_order"]

[partners.files]
folder = "{folder / "partner"}"

[[partners.files.rules]]
pattern = "*.x12"
document_type = "purchase_order_ack"
format = "x12"

[partners.x12]
sender_id = "DISTCO"
receiver_id = "ACMESUPPLY"

[partners.edi]
send_as_x12 = ["purchase_order"]
unacknowledged_after_s = 86400
""",
        encoding="utf-8",
    )
    return path


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "edi", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


async def test_edi_unacknowledged_lists_sets_sent_and_not_answered(tmp_path: Path) -> None:
    config = write_partner_config(tmp_path)
    async with Store(tmp_path / "gateway.db") as store:
        channel = X12Channel(tmp_path, store)
        for n in (1, 2):
            await X12FileDelivery(store, PARTNER, PROFILE).send(order(n)[1], 0)
        first, _ = await store.edi.sent()
        channel.drop("997_1.x12", functional_ack(first.group, rejected=False))
        await channel.settle()

    listed = cli("unacknowledged", "--config", str(config), "--older-than", "0s")
    none_yet = cli("unacknowledged", "--config", str(config), "--older-than", "24h")
    bad_age = cli("unacknowledged", "--config", str(config), "--older-than", "soon")

    assert listed.returncode == 1, listed.stderr
    (line,) = listed.stdout.splitlines()
    assert "850 ISA13 000000002 GS06 2 ST02 0001" in line
    assert PARTNER in line
    assert (none_yet.returncode, none_yet.stdout) == (0, "")
    assert bad_age.returncode == 2
    assert "not an age" in bad_age.stderr


async def test_an_order_sent_as_x12_lands_on_the_partners_sftp_server(
    sftp_server: LocalSshd, tmp_path: Path
) -> None:
    document, record = order(7)
    async with Store(tmp_path / "gateway.db") as store, SftpSource(sftp_server.endpoint()) as sftp:
        channel = X12Channel(tmp_path, store, source=sftp)
        await X12FileDelivery(store, PARTNER, PROFILE).send(record, 0)

        round_ = await channel.poller.poll_once()

    assert round_.put == ["850_000000001.x12"]
    landed = sftp_server.folder("outbound") / "850_000000001.x12"
    reading = decode_file(landed.read_bytes(), file_name=landed.name, sha256="0" * 64)
    assert reading.accepted
    assert [d.document for d in reading.decoding.documents] == [document]
    # Written under a temporary name, then renamed: nothing else is left in the folder.
    assert os.listdir(sftp_server.folder("outbound")) == ["850_000000001.x12"]
    assert dt.datetime.strptime(reading.interchanges[0].header.date, "%y%m%d")
