"""One partner's SFTP server as the client needs it: address, pinned host key, login, folders,
and the bounds on every operation.

Built by the gateway from the partner's `[partners.sftp.server]` table with its secrets already
resolved; this package never reads configuration or the environment.
"""

from __future__ import annotations

from msgspec import Struct

from protocols.http.egress import IPNetwork
from protocols.http.redaction import redacted_repr

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT_S",
    "DEFAULT_KEEPALIVE_INTERVAL_S",
    "DEFAULT_MAX_LISTING",
    "DEFAULT_OPERATION_TIMEOUT_S",
    "DEFAULT_TRANSFER_TIMEOUT_S",
    "SftpEndpoint",
    "SftpFolders",
]

# TCP connect, key exchange and login together.
DEFAULT_CONNECT_TIMEOUT_S = 15.0
# One listing, rename or stat.
DEFAULT_OPERATION_TIMEOUT_S = 30.0
# One whole fetch or put (a file of max_file_bytes on a slow link).
DEFAULT_TRANSFER_TIMEOUT_S = 300.0
# An idle connection is probed this often, so a dead one is found before the next round uses it.
DEFAULT_KEEPALIVE_INTERVAL_S = 30.0
# Entries one listing reads from the incoming folder; the rest wait for the next round.
DEFAULT_MAX_LISTING = 10_000


class SftpFolders(Struct, frozen=True, kw_only=True):
    """The partner's folders on its server, relative to the login's start folder or absolute."""

    incoming: str = "incoming"  # files the partner leaves for us
    archive: str = "archive"  # where a file goes once committed
    error: str = "error"  # where a refused file goes
    outbound: str = "outbound"  # files we leave for the partner


class SftpEndpoint(Struct, frozen=True, kw_only=True):
    """Where a partner's SFTP server is and how to log in; secrets resolved, repr redacted.

    `host_key` is required: the one OpenSSH public key line (`ssh-ed25519 AAAA...`) the server
    must present. There is no way to switch host key checking off.
    """

    host: str
    port: int = 22
    username: str
    host_key: str
    password: str | None = None
    private_key: str | None = None  # OpenSSH or PEM text, unencrypted
    folders: SftpFolders = SftpFolders()
    # Non-public networks the host may resolve to (the egress guard's rule for every transport).
    allow_networks: tuple[IPNetwork, ...] = ()
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    operation_timeout_s: float = DEFAULT_OPERATION_TIMEOUT_S
    transfer_timeout_s: float = DEFAULT_TRANSFER_TIMEOUT_S
    keepalive_interval_s: float = DEFAULT_KEEPALIVE_INTERVAL_S
    max_listing: int = DEFAULT_MAX_LISTING

    def __repr__(self) -> str:
        return redacted_repr(self, ("password", "private_key"))
