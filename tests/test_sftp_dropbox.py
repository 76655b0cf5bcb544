"""The hosted drop box: partners log in with their own keys and stay inside their own folder."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import asyncssh
import pytest
from sshd import new_key

from protocols.sftp import DropBox, DropBoxPartner, SftpError

pytestmark = pytest.mark.anyio

SECRET = b"the gateway's own file"


@dataclass
class Running:
    box: DropBox
    port: int
    host_key: str  # public line, what partners pin
    keys: dict[str, str]  # partner id -> private key
    outside: Path  # a file outside every partner's folder


@pytest.fixture
async def dropbox(tmp_path: Path) -> AsyncIterator[Running]:
    host_private, host_public = new_key()
    keys, partners = {}, []
    for partner_id in ("acme", "globex"):
        private, public = new_key()
        keys[partner_id] = private
        partners.append(DropBoxPartner(partner_id=partner_id, authorized_keys=(public,)))
    outside = tmp_path / "outside" / "secret.txt"
    outside.parent.mkdir()
    outside.write_bytes(SECRET)
    root = tmp_path / "dropbox"
    # Planted before the server starts, as an operator's mistake or an old migration might.
    (root / "acme" / "incoming").mkdir(parents=True)
    os.symlink(outside, root / "acme" / "incoming" / "planted.csv")
    os.symlink(outside.parent, root / "acme" / "incoming" / "planted-dir")
    os.link(outside, root / "acme" / "incoming" / "planted-hard.csv")
    (root / "globex" / "incoming").mkdir(parents=True)
    (root / "globex" / "incoming" / "globex-only.csv").write_bytes(b"globex's file")
    box = DropBox(root=root, host_key=host_private, partners=partners, max_file_bytes=4096)
    async with anyio.create_task_group() as tg:
        port = await tg.start(box.serve)
        yield Running(box, port, host_public, keys, outside)
        tg.cancel_scope.cancel()


@asynccontextmanager
async def login(
    running: Running, partner_id: str, *, key_of: str | None = None
) -> AsyncIterator[asyncssh.SFTPClient]:
    """Log in as `partner_id` with the key of `key_of` (its own by default)."""
    key = asyncssh.import_private_key(running.keys[key_of or partner_id])
    async with asyncssh.connect(
        "127.0.0.1",
        running.port,
        username=partner_id,
        client_keys=[key],
        known_hosts=([asyncssh.import_public_key(running.host_key)], [], []),
        agent_path=None,
        config=[],
    ) as conn:
        async with conn.start_sftp_client() as sftp:
            yield sftp


async def test_a_partner_folder_that_is_a_link_is_not_served(tmp_path: Path) -> None:
    host_private, _ = new_key()
    _, public = new_key()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "box").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "box" / "acme")
    box = DropBox(
        root=tmp_path / "box",
        host_key=host_private,
        partners=[DropBoxPartner(partner_id="acme", authorized_keys=(public,))],
    )

    with pytest.raises(SftpError, match="is a link"):
        await box.serve()  # refuses before it listens

    assert list((tmp_path / "elsewhere").iterdir()) == []


async def test_an_upload_lands_in_the_partners_folder(dropbox: Running) -> None:
    async with login(dropbox, "acme") as sftp:
        async with sftp.open("/incoming/stock.csv", "wb") as f:
            await f.write(b"sku,qty\nA-1,5\n")

    on_disk = dropbox.box.folder_of("acme") / "incoming" / "stock.csv"
    assert on_disk.read_bytes() == b"sku,qty\nA-1,5\n"


async def test_a_partner_sees_only_its_own_folder(dropbox: Running) -> None:
    async with login(dropbox, "acme") as sftp:
        top = sorted(await sftp.listdir("/"))
        incoming = sorted(await sftp.listdir("/incoming"))
        with pytest.raises(asyncssh.SFTPNoSuchFile):
            await sftp.listdir("/globex/incoming")

    assert [n for n in top if n not in (".", "..")] == ["archive", "error", "incoming", "outbound"]
    assert "globex-only.csv" not in incoming


@pytest.mark.parametrize(
    "path",
    [
        "../globex/incoming/globex-only.csv",
        "/../globex/incoming/globex-only.csv",
        "incoming/../../globex/incoming/globex-only.csv",
        "/incoming/../../../../etc/hostname",
    ],
)
async def test_climbing_out_with_dot_dot_is_refused(dropbox: Running, path: str) -> None:
    async with login(dropbox, "acme") as sftp:
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.open(path, "rb")
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.open(path.replace("globex-only", "dropped"), "wb")

    assert not (dropbox.box.folder_of("globex") / "incoming" / "dropped.csv").exists()


async def test_an_absolute_path_stays_inside_the_folder(dropbox: Running) -> None:
    async with login(dropbox, "acme") as sftp:
        with pytest.raises(asyncssh.SFTPNoSuchFile):
            await sftp.open(str(dropbox.outside), "rb")


@pytest.mark.parametrize("path", ["/incoming/planted.csv", "/incoming/planted-dir/secret.txt"])
async def test_a_planted_symlink_leading_out_is_refused(dropbox: Running, path: str) -> None:
    async with login(dropbox, "acme") as sftp:
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.open(path, "rb")
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.open(path, "wb")
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.stat(path)

    assert dropbox.outside.read_bytes() == SECRET


@pytest.mark.parametrize("mode", ["rb", "wb", "ab"])
async def test_a_planted_hard_link_is_not_opened(dropbox: Running, mode: str) -> None:
    async with login(dropbox, "acme") as sftp:
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.open("/incoming/planted-hard.csv", mode)

    assert dropbox.outside.read_bytes() == SECRET


async def test_writing_through_a_planted_folder_link_creates_nothing_outside(
    dropbox: Running,
) -> None:
    async with login(dropbox, "acme") as sftp:
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.open("/incoming/planted-dir/new.csv", "wb")

    assert sorted(p.name for p in dropbox.outside.parent.iterdir()) == ["secret.txt"]


async def test_a_partner_cannot_make_links(dropbox: Running) -> None:
    async with login(dropbox, "acme") as sftp:
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.symlink("/incoming", "/incoming/loop")

    assert not (dropbox.box.folder_of("acme") / "incoming" / "loop").is_symlink()


@pytest.mark.parametrize(("user", "key_of"), [("globex", "acme"), ("nobody", "acme")])
async def test_a_login_with_another_partners_key_is_refused(
    dropbox: Running, user: str, key_of: str
) -> None:
    with pytest.raises(asyncssh.PermissionDenied):
        async with login(dropbox, user, key_of=key_of):
            pass


async def test_a_file_past_the_bound_is_refused(dropbox: Running) -> None:
    async with login(dropbox, "acme") as sftp:
        with pytest.raises(asyncssh.SFTPError):
            async with sftp.open("/incoming/huge.csv", "wb") as f:
                await f.write(b"x" * 5000)


@pytest.mark.parametrize(
    ("bounds", "other_partner_let_in"),
    [
        ({"max_connections": 1}, False),
        ({"max_partner_connections": 1}, True),
    ],
    ids=["total", "per-partner"],
)
async def test_connections_past_the_bound_are_closed(
    tmp_path: Path, bounds: dict[str, int], other_partner_let_in: bool
) -> None:
    host_private, host_public = new_key()
    keys, partners = {}, []
    for partner_id in ("acme", "globex"):
        private, public = new_key()
        keys[partner_id] = private
        partners.append(DropBoxPartner(partner_id=partner_id, authorized_keys=(public,)))
    box = DropBox(root=tmp_path / "box", host_key=host_private, partners=partners, **bounds)
    running = Running(box, 0, host_public, keys, tmp_path)
    async with anyio.create_task_group() as tg:
        running.port = await tg.start(box.serve)
        async with login(running, "acme") as first:
            with pytest.raises((asyncssh.Error, OSError)):
                async with login(running, "acme") as second:
                    await second.listdir("/")
            if other_partner_let_in:
                async with login(running, "globex") as other:
                    assert "incoming" in await other.listdir("/")
            else:
                with pytest.raises((asyncssh.Error, OSError)):
                    async with login(running, "globex") as other:
                        await other.listdir("/")
            assert "incoming" in await first.listdir("/")
        # The first one gone (as the server sees it), a new login is let in.
        with anyio.fail_after(10):
            while box.connections:
                await anyio.sleep(0.01)
        async with login(running, "acme") as again:
            assert "incoming" in await again.listdir("/")
        tg.cancel_scope.cancel()
