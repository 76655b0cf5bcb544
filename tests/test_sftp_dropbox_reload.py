"""A reload changes who may log in to the running drop box; the listener and others go on."""

from __future__ import annotations

import asyncssh
import pytest
from sshd import new_key
from test_sftp_dropbox import Running, dropbox, login

from protocols.sftp import DropBoxPartner, SftpError

__all__ = ["dropbox"]  # the fixture, used by name

pytestmark = pytest.mark.anyio


def public_of(running: Running, partner_id: str) -> str:
    """The public line of the key `partner_id` logs in with."""
    key = asyncssh.import_private_key(running.keys[partner_id])
    return key.export_public_key().decode()


def serving(running: Running, partner_ids: list[str]) -> list[DropBoxPartner]:
    return [
        DropBoxPartner(partner_id=p, authorized_keys=(public_of(running, p),)) for p in partner_ids
    ]


async def upload(sftp: asyncssh.SFTPClient, name: str, body: bytes) -> None:
    async with sftp.open(f"/incoming/{name}", "wb") as f:
        await f.write(body)


async def test_a_partner_added_logs_in_while_another_partners_open_session_goes_on(
    dropbox: Running,
) -> None:
    dropbox.keys["initech"], _ = new_key()
    async with login(dropbox, "globex") as globex:
        with pytest.raises(asyncssh.PermissionDenied):
            async with login(dropbox, "initech"):
                pass

        dropbox.box.reconfigure(serving(dropbox, ["acme", "globex", "initech"]))

        async with login(dropbox, "initech") as initech:
            await upload(initech, "first.csv", b"sku,qty\nI-1,1\n")
        await upload(globex, "after-reload.csv", b"sku,qty\nG-1,2\n")

    box = dropbox.box
    assert (box.folder_of("initech") / "incoming" / "first.csv").read_bytes() == b"sku,qty\nI-1,1\n"
    assert (box.folder_of("globex") / "incoming" / "after-reload.csv").exists()
    assert box.partner_ids() == ("acme", "globex", "initech")


async def test_a_partner_removed_is_logged_out_and_refused_while_the_others_go_on(
    dropbox: Running,
) -> None:
    async with login(dropbox, "globex") as globex, login(dropbox, "acme") as acme:
        dropbox.box.reconfigure(serving(dropbox, ["globex"]))

        with pytest.raises((asyncssh.SFTPConnectionLost, asyncssh.DisconnectError)):
            await upload(acme, "late.csv", b"sku,qty\n")
        with pytest.raises(asyncssh.PermissionDenied):
            async with login(dropbox, "acme"):
                pass
        await upload(globex, "still.csv", b"sku,qty\nG-1,2\n")

    assert (dropbox.box.folder_of("globex") / "incoming" / "still.csv").exists()
    assert not (dropbox.box.folder_of("acme") / "incoming" / "late.csv").exists()


async def test_an_unreadable_key_changes_nothing(dropbox: Running) -> None:
    broken = DropBoxPartner(partner_id="initech", authorized_keys=("ssh-ed25519 nonsense",))

    with pytest.raises(SftpError, match="initech"):
        dropbox.box.reconfigure([*serving(dropbox, ["globex"]), broken])

    assert dropbox.box.partner_ids() == ("acme", "globex")
    async with login(dropbox, "acme") as acme:
        await upload(acme, "ok.csv", b"sku,qty\n")
