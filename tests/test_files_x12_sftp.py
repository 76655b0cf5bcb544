"""X12 files on a partner's own SFTP server (a real OpenSSH sshd, tests/sshd.py), taken by the
poller over `SftpSource` into a real store: the file is taken once and archived on the server,
and the 997 it is owed lands in the server's outbound folder; a connection dropped between the
commit and the put neither loses nor repeats the ack."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sshd import LocalSshd
from x12_channel import X12Channel, supplier_file

from canonical.x12 import decode_file
from gateway.store import Store
from protocols.sftp import SftpSource

pytestmark = pytest.mark.anyio

MTIME = 1_780_000_000


def drop(server: LocalSshd, name: str, text: str) -> None:
    path = server.folder("incoming") / name
    path.write_bytes(text.encode("latin-1"))
    os.utime(path, (MTIME, MTIME))


async def test_an_x12_file_on_the_partners_server_is_taken_once_and_answered_there(
    sftp_server: LocalSshd, tmp_path: Path
) -> None:
    drop(sftp_server, "supplier_1.x12", supplier_file())
    async with Store(tmp_path / "gateway.db") as store, SftpSource(sftp_server.endpoint()) as sftp:
        channel = X12Channel(tmp_path, store, source=sftp)

        report = await channel.settle()
        drop(sftp_server, "supplier_1.x12", supplier_file())  # the partner uploads it again
        again = await channel.settle()

    assert [(r.outcome, r.documents) for _, r in report.taken] == [("accepted", 3)]
    assert [r.outcome for _, r in again.taken] == ["duplicate"]
    # The upload again is archived beside the first, never over it.
    assert sorted(os.listdir(sftp_server.folder("archive"))) == [
        "supplier_1-1.x12",
        "supplier_1.x12",
    ]
    (ack,) = os.listdir(sftp_server.folder("outbound"))
    reading = decode_file(
        (sftp_server.folder("outbound") / ack).read_bytes(), file_name=ack, sha256="0" * 64
    )
    assert [g.status for g in reading.functional_acks] == ["A", "A", "A"]


async def test_a_connection_dropped_before_the_ack_is_put_puts_it_once_after(
    sftp_server: LocalSshd, tmp_path: Path
) -> None:
    drop(sftp_server, "supplier_1.x12", supplier_file())
    async with Store(tmp_path / "gateway.db") as store, SftpSource(sftp_server.endpoint()) as sftp:
        channel = X12Channel(tmp_path, store, source=sftp)
        await channel.poller.poll_once()
        channel.clock.now += 1.0
        # The round commits and moves the file; the connection drops before the ack's put.
        real_put = sftp.put
        dropped: list[str] = []

        async def put_dropping_once(name: str, body: bytes) -> str:
            if not dropped:
                dropped.append(name)
                sftp_server.drop_sessions()
                raise ConnectionResetError("dropped")
            return await real_put(name, body)

        sftp.put = put_dropping_once  # type: ignore[method-assign]
        await channel.poller.poll_once()
        assert os.listdir(sftp_server.folder("outbound")) == []

        later = await channel.poller.poll_once()
        last = await channel.poller.poll_once()

    assert later.put == [dropped[0]]
    assert last.put == []
    assert os.listdir(sftp_server.folder("outbound")) == [dropped[0]]
    assert os.listdir(sftp_server.folder("archive")) == ["supplier_1.x12"]
