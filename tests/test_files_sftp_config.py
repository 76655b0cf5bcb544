"""Where a partner's files come from: `[partners.files]` rules over its SFTP server, its drop
box folder or a local folder; the polling an SFTP channel takes from `[partners.sftp]`; and how
a failing round reaches the operator (logged once per outage, refusals at ERROR)."""

from __future__ import annotations

import base64
import logging
import os
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sshd import new_key

from canonical.errors import ConfigError
from gateway.config import GatewayConfig, load_config
from gateway.file_channels import FileChannels
from gateway.sftp import FileChannelHealth, drop_box
from gateway.store import Store
from protocols.files import LocalFolderSource
from protocols.http.egress import EgressRefused
from protocols.sftp import SftpHostKeyRefused, SftpSource, SftpUnavailable

pytestmark = pytest.mark.anyio

_, HOST_KEY = new_key()
_, PARTNER_KEY = new_key()
SERVER = f"""
[partners.sftp]
poll_interval_s = 7
settle_s = 3
max_file_bytes = 4096
[partners.sftp.server]
host = "sftp.acme.example"
username = "gw"
host_key = "{HOST_KEY}"
password = "pw"
"""
HOSTED = f'[partners.sftp.hosted]\nauthorized_keys = ["{PARTNER_KEY}"]\n'
RULES = """
[[partners.files.rules]]
pattern = "stock_*.csv"
document_type = "inventory_position"
[partners.files.rules.csv]
columns = { "Item" = "sku", "Warehouse" = "location_id", "Qty" = "on_hand", "Date" = "as_of" }
"""


def config_file(folder: Path, partner: str, extra: str = "") -> Path:
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    path = folder / "gw.toml"
    path.write_text(
        f'[amqp]\nurl = "amqp://gw:pw@127.0.0.1:5672/%2F"\n[store]\npath = "{folder / "gw.db"}"\n'
        f'{extra}[[partners]]\nid = "acme"\nname = "Acme"\nsecrets = ["{secret}"]\n'
        f'sends = ["inventory_position"]\n{partner}\n'
    )
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    return [error.message.split(": ", 1)[1] for error in caught.value.errors]


@pytest.mark.parametrize(
    ("partner", "expected"),
    [
        (
            "[partners.files]\n" + RULES,
            "files.folder: give the partner's folder, or a [partners.sftp] table",
        ),
        (
            SERVER + '[partners.files]\nfolder = "/srv/acme"\n' + RULES,
            "files.folder: the files come from [partners.sftp]; delete folder",
        ),
        (
            SERVER + "[partners.files]\nsettle_s = 5\n" + RULES,
            "files.settle_s: an SFTP channel's settle_s is set in [partners.sftp]",
        ),
    ],
    ids=["no-source", "two-sources", "polling-in-the-wrong-table"],
)
def test_a_file_channel_names_one_source(tmp_path: Path, partner: str, expected: str) -> None:
    assert problems(config_file(tmp_path, partner)) == [f"partner 'acme': {expected}"]


async def test_a_partner_with_its_own_server_is_polled_over_sftp_as_its_sftp_table_says(
    tmp_path: Path,
) -> None:
    config = load_config(config_file(tmp_path, SERVER + "[partners.files]\n" + RULES), {})

    [poller] = FileChannels(config, store_of(config)).pollers

    assert isinstance(poller.source, SftpSource)
    assert poller.source.endpoint.host == "sftp.acme.example"
    policy = poller.policy
    assert (policy.poll_interval_s, policy.settle_s, policy.max_file_bytes) == (7, 3, 4096)
    assert [rule.pattern for rule in policy.rules] == ["stock_*.csv"]


async def test_a_hosted_partner_is_polled_in_its_drop_box_folder(tmp_path: Path) -> None:
    box_private, _ = new_key()
    (tmp_path / "box.key").write_text(box_private)
    dropbox = f'[sftp_dropbox]\nhost_key = {{ file = "box.key" }}\nroot = "{tmp_path / "box"}"\n'
    path = config_file(tmp_path, HOSTED + "[partners.files]\n" + RULES, extra=dropbox)
    config = load_config(path, {})
    assert config.sftp_dropbox is not None
    box = drop_box(config.sftp_dropbox, config.partners)

    [poller] = FileChannels(config, store_of(config), drop_box=box).pollers

    assert isinstance(poller.source, LocalFolderSource)
    assert poller.source.root == tmp_path / "box" / "acme"


def store_of(config: GatewayConfig) -> Store:
    """The config's store, not opened: building the pollers opens nothing."""
    return Store(config.store.path)


def test_an_unavailable_server_is_logged_once_per_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = CollectorRegistry()
    watch = FileChannelHealth(registry).watch("acme")
    caplog.set_level(logging.INFO, logger="gateway.files")

    for _ in range(3):
        assert watch.failed(SftpUnavailable("no answer"))
    unavailable = registry.get_sample_value("gateway_file_channel_unavailable", {"partner": "acme"})
    watch.succeeded()
    watch.succeeded()
    assert watch.failed(SftpUnavailable("no answer again"))

    assert [(r.levelname, r.getMessage().split(";")[0]) for r in caplog.records] == [
        ("WARNING", "file channel unavailable"),
        ("INFO", "file channel reachable again"),
        ("WARNING", "file channel unavailable"),
    ]
    assert unavailable == 1
    failed = {"partner": "acme", "reason": "sftp-unavailable"}
    assert registry.get_sample_value("gateway_file_channel_failed_rounds_total", failed) == 4


@pytest.mark.parametrize(
    "error",
    [SftpHostKeyRefused("not the pinned key"), EgressRefused("127.0.0.1 is loopback")],
    ids=["host-key", "egress-guard"],
)
def test_a_refusal_is_an_error_with_a_gauge_until_the_channel_works(
    caplog: pytest.LogCaptureFixture, error: Exception
) -> None:
    registry = CollectorRegistry()
    watch = FileChannelHealth(registry).watch("acme")

    def refused() -> float | None:
        return registry.get_sample_value("gateway_file_channel_refused", {"partner": "acme"})

    assert refused() == 0
    assert watch.failed(error)
    assert watch.failed(error)
    during = refused()
    watch.succeeded()

    assert [r.levelname for r in caplog.records if r.levelname == "ERROR"] == ["ERROR"]
    assert (during, refused()) == (1, 0)


def test_a_failure_that_is_not_the_transports_is_left_to_the_poller() -> None:
    watch = FileChannelHealth(CollectorRegistry()).watch("acme")

    assert watch.failed(OSError("disk full")) is False


# The shape of a key (what the secret type checks), without a key inside.
GARBLED_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nbm90IGEga2V5\n-----END OPENSSH PRIVATE KEY-----\n"
)


def test_a_private_key_the_client_cannot_read_is_a_config_problem(tmp_path: Path) -> None:
    (tmp_path / "acme.key").write_text(GARBLED_KEY)
    server = SERVER.replace('password = "pw"', 'private_key = { file = "acme.key" }')

    assert problems(config_file(tmp_path, server + "[partners.files]\n" + RULES)) == [
        "partner 'acme': sftp.server.private_key: not a key the SSH client reads (OpenSSH or PEM)"
    ]


@pytest.mark.parametrize(
    ("key", "port", "expected"),
    [
        (GARBLED_KEY, 2222, "host_key: not a key the SSH server reads (OpenSSH or PEM)"),
        (None, 8080, "port: clashes with [http] (127.0.0.1:8080)"),
    ],
    ids=["unreadable-host-key", "port-taken"],
)
def test_a_drop_box_that_could_not_serve_is_a_config_problem(
    tmp_path: Path, key: str | None, port: int, expected: str
) -> None:
    (tmp_path / "box.key").write_text(key or new_key()[0])
    dropbox = f'[sftp_dropbox]\nhost_key = {{ file = "box.key" }}\nport = {port}\n'
    path = config_file(tmp_path, HOSTED + "[partners.files]\n" + RULES, extra=dropbox)

    [problem] = problems(path)

    assert problem.endswith(expected)
