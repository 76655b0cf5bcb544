"""A partner's SFTP channel: its own server (host key pinned), or a folder in the hosted drop box.

In TOML it is the partner's `sftp` table, with one of two sub-tables:

    [partners.sftp]
    poll_interval_s = 60                     # how often the incoming folder is listed
    settle_s = 2                             # a file is taken once unchanged this long (>= 1 s)
    max_file_bytes = 67108864                # a bigger file is refused, never read whole
    [partners.sftp.server]                   # the partner's own server...
    host = "sftp.acme.example"
    port = 22
    username = "gateway"
    host_key = "ssh-ed25519 AAAAC3Nza..."    # required: the one key the server may present
    private_key = { file = "keys/acme" }     # or password = { env = "ACME_SFTP_PASSWORD" }
    allow_networks = ["10.20.0.0/16"]        # only to reach a server on a private network
    [partners.sftp.folders]                  # the defaults shown
    incoming = "incoming"
    archive = "archive"
    error = "error"
    outbound = "outbound"

or, for a partner without a server, a folder in the gateway's drop box (`[sftp_dropbox]`,
`DropBoxSettings`), which the partner logs in to as its id with one of these keys:

    [partners.sftp.hosted]
    authorized_keys = ["ssh-ed25519 AAAAC3Nza... acme-2026"]

Host key checking cannot be switched off: `host_key` has no default and no "any" value.
"""

from __future__ import annotations

import ipaddress
import warnings
from collections.abc import Iterator
from typing import Annotated

import msgspec

from gateway.config.base import MIB, Base, Count, Host, Name, Port, Problem, Seconds, known
from gateway.config.secrets import Password, PrivateKey

with warnings.catch_warnings():
    # asyncssh names cryptography's deprecated DSA types at import; no DSA key is accepted.
    warnings.filterwarnings("ignore", message="DSA is deprecated", category=UserWarning)
    import asyncssh

__all__ = [
    "DEFAULT_DROPBOX_PORT",
    "DEFAULT_MAX_FILE_BYTES",
    "DEFAULT_POLL_INTERVAL_S",
    "DEFAULT_SETTLE_S",
    "DropBoxSettings",
    "HostedFolder",
    "PartnerServer",
    "SftpChannel",
    "SftpFolders",
]

# A partner's folder is looked at this often.
DEFAULT_POLL_INTERVAL_S = 60.0
# mtime has whole seconds: two listings at least a second apart tell a file that still grows.
MIN_SETTLE_S = 1.0
DEFAULT_SETTLE_S = 2.0
# No EDI interchange or CSV feed the gateway takes is near this; a bigger file is refused.
DEFAULT_MAX_FILE_BYTES = 64 * MIB
MAX_FILE_BYTES_CEILING = 1024 * MIB
DEFAULT_SFTP_PORT = 22
DEFAULT_DROPBOX_PORT = 2222
# Mirrors protocols/sftp/endpoint.py and dropbox.py (config imports no transport).
DEFAULT_CONNECT_TIMEOUT_S = 15.0
DEFAULT_OPERATION_TIMEOUT_S = 30.0
DEFAULT_TRANSFER_TIMEOUT_S = 300.0
DEFAULT_KEEPALIVE_INTERVAL_S = 30.0
DEFAULT_MAX_LISTING = 10_000
DEFAULT_LOGIN_TIMEOUT_S = 30.0
DEFAULT_MAX_CONNECTIONS = 64
DEFAULT_MAX_PARTNER_CONNECTIONS = 4
# Keys one partner may have live in the drop box (rotation keeps two or three).
MAX_AUTHORIZED_KEYS = 10

FileBytes = Annotated[int, msgspec.Meta(ge=1, le=MAX_FILE_BYTES_CEILING)]
SettleSeconds = Annotated[float, msgspec.Meta(ge=MIN_SETTLE_S)]
ServerPort = Annotated[int, msgspec.Meta(ge=1, le=65535)]
FolderPath = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
PUBLIC_KEY_EXPECTED = "not an OpenSSH public key line (expected e.g. ssh-ed25519 AAAA...)"


def public_key_problem(line: str) -> str | None:
    """Return what is wrong with an OpenSSH public key line, or None when it reads."""
    if not line.strip():
        return "empty; give the key line (ssh-keyscan or the partner tells you)"
    try:
        key = asyncssh.import_public_key(line)
    except (asyncssh.KeyImportError, ValueError):
        return PUBLIC_KEY_EXPECTED
    if key.get_algorithm() == "ssh-dss":
        return "a DSA key; DSA is refused (ask for an ed25519, ECDSA or RSA key)"
    return None


def network_problems(field: str, networks: tuple[str, ...]) -> Iterator[Problem]:
    """Yield one problem per entry of `networks` that is not a CIDR network."""
    for i, network in enumerate(networks):
        try:
            ipaddress.ip_network(network)
        except ValueError as exc:
            yield f"{field}[{i}]", str(exc)


class SftpFolders(Base, frozen=True):
    """The partner's folders on the server (relative to the login's start folder, or absolute)."""

    incoming: FolderPath = "incoming"
    archive: FolderPath = "archive"
    error: FolderPath = "error"
    outbound: FolderPath = "outbound"

    def problems(self) -> Iterator[Problem]:
        with known():
            names = {
                "incoming": self.incoming,
                "archive": self.archive,
                "error": self.error,
                "outbound": self.outbound,
            }
            for field, path in names.items():
                if "\0" in path:
                    yield field, "a folder name with a NUL character"
            if self.incoming in (self.archive, self.error):
                yield "incoming", "the archive and error folders must differ from incoming"


class PartnerServer(Base, frozen=True):
    """The partner's own SFTP server: where, which host key, which login, what bounds."""

    host: Host
    username: Name
    # Required: the server's OpenSSH public key line. There is no way to skip the check.
    host_key: str
    port: ServerPort = DEFAULT_SFTP_PORT
    password: Password | None = None
    private_key: PrivateKey | None = None
    # Non-public networks the host may resolve to (CIDR); empty: public addresses only.
    allow_networks: tuple[str, ...] = ()
    connect_timeout_s: Seconds = DEFAULT_CONNECT_TIMEOUT_S
    operation_timeout_s: Seconds = DEFAULT_OPERATION_TIMEOUT_S
    transfer_timeout_s: Seconds = DEFAULT_TRANSFER_TIMEOUT_S
    keepalive_interval_s: Seconds = DEFAULT_KEEPALIVE_INTERVAL_S
    max_listing: Count = DEFAULT_MAX_LISTING

    def problems(self) -> Iterator[Problem]:
        with known():
            problem = public_key_problem(self.host_key)
            if problem is not None:
                yield "host_key", problem
        with known():
            if self.password is None and self.private_key is None:
                yield "", "give private_key or password (a secret reference) for the login"
        with known():
            if self.private_key is not None:
                try:
                    asyncssh.import_private_key(self.private_key.reveal())
                except (asyncssh.KeyImportError, ValueError):
                    yield "private_key", "not a key the SSH client reads (OpenSSH or PEM)"
        with known():
            yield from network_problems("allow_networks", self.allow_networks)

    def networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """Return `allow_networks` parsed."""
        return tuple(ipaddress.ip_network(n) for n in self.allow_networks)


class HostedFolder(Base, frozen=True):
    """The partner's folder in the gateway's drop box: the keys it logs in with (as its id)."""

    authorized_keys: Annotated[
        tuple[str, ...], msgspec.Meta(min_length=1, max_length=MAX_AUTHORIZED_KEYS)
    ]

    def problems(self) -> Iterator[Problem]:
        with known():
            for i, line in enumerate(self.authorized_keys):
                problem = public_key_problem(line)
                if problem is not None:
                    yield f"authorized_keys[{i}]", problem


class SftpChannel(Base, frozen=True):
    """One partner's file channel over SFTP: its server or its hosted folder, and the polling."""

    server: PartnerServer | None = None
    hosted: HostedFolder | None = None
    folders: SftpFolders = SftpFolders()
    poll_interval_s: Seconds = DEFAULT_POLL_INTERVAL_S
    settle_s: SettleSeconds = DEFAULT_SETTLE_S
    max_file_bytes: FileBytes = DEFAULT_MAX_FILE_BYTES

    def problems(self) -> Iterator[Problem]:
        with known():
            if (self.server is None) == (self.hosted is None):
                yield "", "give exactly one of [partners.sftp.server] or [partners.sftp.hosted]"


class DropBoxSettings(Base, frozen=True):
    """The gateway's hosted drop box (`[sftp_dropbox]`): one listener for every hosted partner."""

    # The drop box's own private host key: what partners pin. Usually { file = "..." }.
    host_key: PrivateKey
    host: Host = "127.0.0.1"
    port: Port = DEFAULT_DROPBOX_PORT
    # The folder holding one folder per partner (a relative path as [store] path is).
    root: FolderPath = "var/dropbox"
    login_timeout_s: Seconds = DEFAULT_LOGIN_TIMEOUT_S
    max_connections: Count = DEFAULT_MAX_CONNECTIONS  # every partner together
    max_partner_connections: Count = DEFAULT_MAX_PARTNER_CONNECTIONS  # one partner's
    keepalive_interval_s: Seconds = DEFAULT_KEEPALIVE_INTERVAL_S
    max_file_bytes: FileBytes = DEFAULT_MAX_FILE_BYTES

    def problems(self) -> Iterator[Problem]:
        with known():
            try:
                asyncssh.import_private_key(self.host_key.reveal())
            except (asyncssh.KeyImportError, ValueError):
                yield "host_key", "not a key the SSH server reads (OpenSSH or PEM)"
