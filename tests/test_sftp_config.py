"""A partner's `[partners.sftp]` table: a pinned host key is required, the login comes from a
secret reference, and a loaded table reaches the real sshd."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import msgspec
import pytest
from sshd import LocalSshd, new_key

from canonical.errors import ConfigError
from gateway.config import load_config
from gateway.config.sftp import DropBoxSettings
from gateway.sftp import drop_box, endpoint_of, source_for

pytestmark = pytest.mark.anyio

AMQP = '[amqp]\nurl = "amqp://gw:pw@127.0.0.1:5672/%2F"\n'
_, HOST_KEY = new_key()


def config(folder: Path, sftp: str) -> Path:
    """A config file with one partner whose sftp tables are `sftp` (TOML lines)."""
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    path = folder / "gw.toml"
    path.write_text(
        f'{AMQP}[[partners]]\nid = "acme"\nname = "Acme"\nsecrets = ["{secret}"]\n'
        f'sends = ["inventory_position"]\n{sftp}\n'
    )
    return path


def problems(path: Path, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ or {})
    return [error.message.split(": ", 1)[1] for error in caught.value.errors]


SERVER = '[partners.sftp.server]\nhost = "sftp.acme.example"\nusername = "gw"\n'


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (SERVER + 'password = "pw"\n', "sftp.server.host_key: missing required field"),
        (SERVER + 'host_key = ""\npassword = "pw"\n', "sftp.server.host_key: empty"),
        (SERVER + 'host_key = "ssh-ed25519 nonsense"\npassword = "pw"\n', "not an OpenSSH"),
        (SERVER + f'host_key = "{HOST_KEY}"\n', "give private_key or password"),
        (SERVER + f'host_key = "{HOST_KEY}"\nknown_hosts = "none"\npassword = "p"\n', "unknown"),
        (
            SERVER + f'host_key = "{HOST_KEY}"\npassword = "p"\n'
            '[partners.sftp.hosted]\nauthorized_keys = ["x"]\n',
            "exactly one of",
        ),
        ("[partners.sftp]\npoll_interval_s = 5\n", "exactly one of"),
        ("[partners.sftp]\nsettle_s = 0.5\n" + SERVER, "settle_s: Expected `float` >= 1.0"),
        ('[partners.sftp.hosted]\nauthorized_keys = ["ssh-rsa AAAA"]\n', "not an OpenSSH"),
        (
            SERVER + f'host_key = "{HOST_KEY}"\npassword = "p"\nallow_networks = ["10.0.0.0/33"]\n',
            "allow_networks[0]",
        ),
        (SERVER + f'host_key = "{HOST_KEY}"\nprivate_key = "hunter2"\n', "not a private key"),
    ],
    ids=[
        "no-host-key",
        "empty-host-key",
        "bad-host-key",
        "no-login",
        "host-key-check-off",
        "server-and-hosted",
        "neither",
        "settle-under-a-second",
        "bad-authorized-key",
        "bad-network",
        "bad-private-key",
    ],
)
def test_a_broken_sftp_table_is_reported(tmp_path: Path, lines: str, expected: str) -> None:
    found = problems(config(tmp_path, lines))

    assert any(expected in problem for problem in found), found


def test_secrets_come_from_references_and_never_show(tmp_path: Path) -> None:
    private, _ = new_key()
    (tmp_path / "acme.key").write_text(private)
    path = config(
        tmp_path,
        SERVER + f'host_key = "{HOST_KEY}"\nprivate_key = {{ file = "acme.key" }}\n'
        'password = { env = "ACME_SFTP" }\n',
    )

    cfg = load_config(path, {"ACME_SFTP": "correct horse"})

    acme = cfg.partner("acme")
    assert acme is not None
    assert acme.sftp is not None
    assert acme.sftp.server is not None
    endpoint = endpoint_of(acme.sftp)
    assert (endpoint.password, endpoint.private_key) == ("correct horse", private.strip() + "\n")
    for shown in (repr(acme), repr(endpoint)):
        assert "correct horse" not in shown
        assert "PRIVATE KEY" not in shown
    with pytest.raises(TypeError):
        msgspec.json.encode(acme.sftp.server)


async def test_a_loaded_channel_reaches_the_real_server(
    tmp_path: Path, sftp_server: LocalSshd
) -> None:
    (tmp_path / "client.key").write_text(sftp_server.client_key)
    path = config(
        tmp_path,
        f'[partners.sftp.server]\nhost = "127.0.0.1"\nport = {sftp_server.port}\n'
        f'username = "{sftp_server.username}"\nhost_key = "{sftp_server.host_key}"\n'
        'private_key = { file = "client.key" }\nallow_networks = ["127.0.0.0/8"]\n',
    )
    (sftp_server.folder("incoming") / "stock.csv").write_bytes(b"sku,qty\n")
    acme = load_config(path, {}).partner("acme")
    assert acme is not None

    async with source_for(acme) as source:
        assert [f.name for f in await source.list_incoming()] == ["stock.csv"]


def test_the_drop_box_serves_only_hosted_partners(tmp_path: Path) -> None:
    _, acme_key = new_key()
    host_private, _ = new_key()
    (tmp_path / "box.key").write_text(host_private)
    path = config(tmp_path, f'[partners.sftp.hosted]\nauthorized_keys = ["{acme_key}"]\n')
    path.write_text(
        f'[sftp_dropbox]\nhost_key = {{ file = "box.key" }}\nroot = "{tmp_path / "box"}"\n'
        + path.read_text()
    )
    cfg = load_config(path, {})
    assert isinstance(cfg.sftp_dropbox, DropBoxSettings)

    box = drop_box(cfg.sftp_dropbox, cfg.partners)

    assert box.folder_of("acme") == tmp_path / "box" / "acme"
    assert box.partner_ids() == ("acme",)


def test_a_hosted_partner_without_a_drop_box_is_reported(tmp_path: Path) -> None:
    _, acme_key = new_key()
    path = config(tmp_path, f'[partners.sftp.hosted]\nauthorized_keys = ["{acme_key}"]\n')

    assert problems(path) == ["partner 'acme': sftp.hosted: no [sftp_dropbox] section to host it"]
