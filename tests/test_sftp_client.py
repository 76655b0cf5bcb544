"""The SFTP client against a real OpenSSH sshd on loopback (tests/sshd.py): what a partner's
server ends up holding after each operation, and what is refused."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncssh
import pytest
from sshd import LOOPBACK, FolderEvents, LocalSshd, new_key

from protocols.http.egress import EgressRefused
from protocols.sftp import (
    SftpAuthRefused,
    SftpEndpoint,
    SftpFileTooLarge,
    SftpHostKeyRefused,
    SftpSource,
    SftpUnavailable,
)

pytestmark = pytest.mark.anyio


def drop(server: LocalSshd, name: str, body: bytes) -> Path:
    """The partner leaves a file in its incoming folder."""
    path = server.folder("incoming") / name
    path.write_bytes(body)
    return path


async def test_listing_shows_only_complete_regular_files(sftp_server: LocalSshd) -> None:
    drop(sftp_server, "po-1.edi", b"ISA")
    drop(sftp_server, "stock.csv", b"sku,qty\n")
    for skipped in ("po-2.edi.tmp", "po-3.edi.part", "PO-4.EDI.PART", ".hidden"):
        drop(sftp_server, skipped, b"half")
    (sftp_server.folder("incoming") / "sub").mkdir()
    os.symlink("/etc/hostname", sftp_server.folder("incoming") / "link.edi")

    async with SftpSource(sftp_server.endpoint()) as source:
        listed = await source.list_incoming()

    assert [(f.name, f.size) for f in listed] == [("po-1.edi", 3), ("stock.csv", 8)]
    assert all(f.mtime > 0 for f in listed)


async def test_fetch_copies_the_file(sftp_server: LocalSshd, tmp_path: Path) -> None:
    body = os.urandom(300_000)  # several read requests
    drop(sftp_server, "big.csv", body)

    async with SftpSource(sftp_server.endpoint()) as source:
        await source.fetch("big.csv", tmp_path / "spool", max_bytes=len(body))

    assert (tmp_path / "spool").read_bytes() == body


async def test_fetch_past_the_bound_keeps_nothing(sftp_server: LocalSshd, tmp_path: Path) -> None:
    drop(sftp_server, "big.csv", b"x" * 2048)

    async with SftpSource(sftp_server.endpoint()) as source:
        with pytest.raises(SftpFileTooLarge) as raised:
            await source.fetch("big.csv", tmp_path / "spool", max_bytes=2047)

    assert isinstance(raised.value, ValueError)  # what the FileSource port promises
    assert not (tmp_path / "spool").exists()


@pytest.mark.parametrize("folder", ["archive", "error"])
async def test_move_then_the_same_move_again_is_a_no_op(
    sftp_server: LocalSshd, folder: str
) -> None:
    drop(sftp_server, "po-1.edi", b"first")

    async with SftpSource(sftp_server.endpoint()) as source:
        moved = await source.move("po-1.edi", folder)  # type: ignore[arg-type]
        again = await source.move("po-1.edi", folder)  # type: ignore[arg-type]

    assert (moved, again) == (True, False)
    assert (sftp_server.folder(folder) / "po-1.edi").read_bytes() == b"first"
    assert list(sftp_server.folder("incoming").iterdir()) == []


async def test_move_onto_a_taken_name_adds_a_suffix(sftp_server: LocalSshd) -> None:
    (sftp_server.folder("archive") / "po-1.edi").write_bytes(b"yesterday")
    (sftp_server.folder("archive") / "po-1-1.edi").write_bytes(b"the day before")
    drop(sftp_server, "po-1.edi", b"today")

    async with SftpSource(sftp_server.endpoint()) as source:
        assert await source.move("po-1.edi", "archive")

    archive = {p.name: p.read_bytes() for p in sftp_server.folder("archive").iterdir()}
    assert archive == {
        "po-1.edi": b"yesterday",
        "po-1-1.edi": b"the day before",
        "po-1-2.edi": b"today",
    }


async def test_put_writes_a_temporary_name_then_renames_it(sftp_server: LocalSshd) -> None:
    watch = FolderEvents(sftp_server.folder("outbound"))
    try:
        async with SftpSource(sftp_server.endpoint()) as source:
            final = await source.put("po-7.edi", b"ISA*00*...")
        events = watch.events()
    finally:
        watch.close()

    assert final == "po-7.edi"
    assert [p.name for p in sftp_server.folder("outbound").iterdir()] == ["po-7.edi"]
    assert (sftp_server.folder("outbound") / "po-7.edi").read_bytes() == b"ISA*00*..."
    # The kernel's record of the folder: a hidden .part name written and closed, and only then
    # the final name (OpenSSH's rename links the new name and unlinks the old one).
    names = [name for _, name in events]
    temporary = names[0]
    assert re.fullmatch(r"\.po-7\.edi\.[0-9a-f]+\.part", temporary)
    final_at = names.index("po-7.edi")
    assert ("closed_written", temporary) in events[:final_at]
    assert events[-1] in {("deleted", temporary), ("moved_from", temporary)}


async def test_put_never_overwrites(sftp_server: LocalSshd) -> None:
    async with SftpSource(sftp_server.endpoint()) as source:
        first = await source.put("po-7.edi", b"first")
        second = await source.put("po-7.edi", b"second")

    assert (first, second) == ("po-7.edi", "po-7-1.edi")
    outbound = {p.name: p.read_bytes() for p in sftp_server.folder("outbound").iterdir()}
    assert outbound == {"po-7.edi": b"first", "po-7-1.edi": b"second"}


async def test_a_changed_host_key_is_refused(sftp_server: LocalSshd) -> None:
    drop(sftp_server, "po-1.edi", b"ISA")
    _, someone_else = new_key()

    async with SftpSource(sftp_server.endpoint(host_key=someone_else)) as source:
        with pytest.raises(SftpHostKeyRefused) as raised:
            await source.list_incoming()

    assert raised.value.reason == "sftp-host-key-refused"


async def test_a_key_the_server_does_not_know_is_refused(sftp_server: LocalSshd) -> None:
    stranger, _ = new_key()

    async with SftpSource(sftp_server.endpoint(private_key=stranger)) as source:
        with pytest.raises(SftpAuthRefused) as raised:
            await source.list_incoming()

    assert raised.value.reason == "sftp-auth-refused"


async def test_the_egress_guard_refuses_loopback_unless_allowed(sftp_server: LocalSshd) -> None:
    async with SftpSource(sftp_server.endpoint(allow_networks=())) as source:
        with pytest.raises(EgressRefused) as raised:
            await source.list_incoming()

    assert raised.value.reason == "egress-refused"


async def list_files(source: SftpSource, server: LocalSshd, tmp: Path) -> object:
    return [f.name for f in await source.list_incoming()]


async def fetch_file(source: SftpSource, server: LocalSshd, tmp: Path) -> object:
    await source.fetch("po-1.edi", tmp / "spool", max_bytes=1024)
    return (tmp / "spool").read_bytes()


async def move_file(source: SftpSource, server: LocalSshd, tmp: Path) -> object:
    return await source.move("po-1.edi", "archive"), sorted(
        p.name for p in server.folder("archive").iterdir()
    )


async def put_file(source: SftpSource, server: LocalSshd, tmp: Path) -> object:
    return await source.put("out.edi", b"x"), sorted(
        p.name for p in server.folder("outbound").iterdir()
    )


Operation = Callable[[SftpSource, LocalSshd, Path], Awaitable[object]]


@pytest.mark.parametrize(
    ("operation", "expected"),
    [
        (list_files, ["po-1.edi"]),
        (fetch_file, b"ISA"),
        (move_file, (True, ["po-1.edi"])),
        (put_file, ("out.edi", ["out.edi"])),
    ],
    ids=["list", "fetch", "move", "put"],
)
async def test_an_operation_after_a_dropped_connection_reconnects(
    sftp_server: LocalSshd, tmp_path: Path, operation: Operation, expected: object
) -> None:
    drop(sftp_server, "po-1.edi", b"ISA")
    async with SftpSource(sftp_server.endpoint()) as source:
        await source.list_incoming()  # connected
        assert sftp_server.drop_sessions() > 0

        assert await operation(source, sftp_server, tmp_path) == expected


async def test_a_server_that_stops_answering_fails_within_the_bound(
    sftp_server: LocalSshd,
) -> None:
    drop(sftp_server, "po-1.edi", b"ISA")
    async with SftpSource(sftp_server.endpoint(operation_timeout_s=1.0)) as source:
        await source.list_incoming()
        assert sftp_server.signal_sessions(signal.SIGSTOP) > 0
        try:
            with pytest.raises(SftpUnavailable) as raised:
                await source.list_incoming()
        finally:
            sftp_server.drop_sessions()  # SIGKILL ends stopped processes too
        assert raised.value.reason == "sftp-unavailable"

        # The next round starts on a fresh connection.
        assert [f.name for f in await source.list_incoming()] == ["po-1.edi"]


class PasswordServer(asyncssh.SSHServer):
    """A login that takes one user's password and nothing else."""

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return (username, password) == ("acme", "correct horse")


@pytest.mark.parametrize(("password", "listed"), [("correct horse", True), ("wrong", False)])
async def test_a_password_login(tmp_path: Path, password: str, listed: bool) -> None:
    # OpenSSH's sshd here has no user with a password; asyncssh's server stands in for it.
    host_private, host_public = new_key()
    (tmp_path / "incoming").mkdir()
    (tmp_path / "incoming" / "po-1.edi").write_bytes(b"ISA")
    server = await asyncssh.listen(
        "127.0.0.1",
        0,
        server_factory=PasswordServer,
        server_host_keys=[asyncssh.import_private_key(host_private)],
        sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=os.fsencode(tmp_path)),
        config=[],
    )
    try:
        endpoint = SftpEndpoint(
            host="127.0.0.1",
            port=server.sockets[0].getsockname()[1],
            username="acme",
            host_key=host_public,
            password=password,
            allow_networks=LOOPBACK,
        )
        async with SftpSource(endpoint) as source:
            if listed:
                assert [f.name for f in await source.list_incoming()] == ["po-1.edi"]
            else:
                with pytest.raises(SftpAuthRefused):
                    await source.list_incoming()
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("host_key", ["", "   ", "ssh-ed25519 not-base64"])
def test_an_endpoint_without_a_readable_pinned_key_is_refused(
    sftp_server: LocalSshd, host_key: str
) -> None:
    with pytest.raises(SftpHostKeyRefused):
        SftpSource(sftp_server.endpoint(host_key=host_key))
