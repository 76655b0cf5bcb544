"""The hosted drop box: an SFTP server for partners without one of their own.

Each partner logs in with its id as the user name and one of its authorized public keys (no
passwords), and sees one folder, `ROOT/<partner id>/`, as `/`: `incoming/` for what it sends,
`outbound/` for what the gateway leaves for it, `archive/` and `error/` where taken files go.

Confinement does not rest on asyncssh's virtual chroot alone, which follows a symlink that
already points outside (its docs say so): every path a partner names is refused when it climbs
above `/` with `..`, and when its real path (symlinks resolved) leaves the partner's folder; and
partners may not create links; a regular file with a second name (a planted hard link) is not
opened. Writes are bounded per file; connections in total.

`reconfigure(partners)` changes who may log in while the box serves (a reload): a partner added
can log in from then on; the open sessions of a partner removed, or whose keys changed, are
closed (a key taken away must stop working); every other session and the listener go on.

The gateway's file intake reads `ROOT/<partner id>/incoming` as a local folder.
"""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import asyncssh
from anyio.abc import TaskStatus
from msgspec import Struct

from protocols.sftp.errors import SftpError

__all__ = [
    "DEFAULT_KEEPALIVE_INTERVAL_S",
    "DEFAULT_LOGIN_TIMEOUT_S",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_FILE_BYTES",
    "DEFAULT_MAX_PARTNER_CONNECTIONS",
    "PARTNER_FOLDERS",
    "DropBox",
    "DropBoxPartner",
]

# The folders each partner finds under its `/`.
PARTNER_FOLDERS = ("incoming", "outbound", "archive", "error")
# A partner that has not logged in by then is disconnected.
DEFAULT_LOGIN_TIMEOUT_S = 30.0
# Connections open at once, every partner together; one more is closed at once.
DEFAULT_MAX_CONNECTIONS = 64
# Logged-in connections of one partner at once, so one partner cannot hold every slot.
DEFAULT_MAX_PARTNER_CONNECTIONS = 4
# A silent peer is probed this often and dropped after three unanswered probes.
DEFAULT_KEEPALIVE_INTERVAL_S = 30.0
# Largest file a partner may write (the intake's own bound is checked again when it reads).
DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024


class DropBoxPartner(Struct, frozen=True, kw_only=True):
    """A partner that may log in: its id (the SSH user name) and its OpenSSH public key lines."""

    partner_id: str
    authorized_keys: tuple[str, ...]


class DropBox:
    """An asyncssh SFTP server with one confined folder per partner, under `root`.

    Run it with `port = await task_group.start(drop_box.serve)`; cancelling the task group
    closes the listener and every connection.
    """

    def __init__(
        self,
        *,
        root: Path,
        host_key: str,
        partners: Sequence[DropBoxPartner],
        host: str = "127.0.0.1",
        port: int = 0,
        login_timeout_s: float = DEFAULT_LOGIN_TIMEOUT_S,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_partner_connections: int = DEFAULT_MAX_PARTNER_CONNECTIONS,
        keepalive_interval_s: float = DEFAULT_KEEPALIVE_INTERVAL_S,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    ) -> None:
        try:
            self._host_key = asyncssh.import_private_key(host_key)
        except (asyncssh.KeyImportError, ValueError):
            raise SftpError("drop box host key unreadable (OpenSSH or PEM, unencrypted)") from None
        self._keys: Mapping[str, frozenset[bytes]] = _keys_of(partners)
        self._root = root.resolve()
        self._host, self._port = host, port
        self._login_timeout_s = login_timeout_s
        self._max_connections = max_connections
        self._max_partner_connections = max_partner_connections
        self._keepalive_interval_s = keepalive_interval_s
        # Each partner's logged-in connections.
        self._sessions: dict[str, set[asyncssh.SSHServerConnection]] = {}
        self._max_file_bytes = max_file_bytes
        self._open = 0

    @property
    def connections(self) -> int:
        """Return how many connections are open now (counted against `max_connections`)."""
        return self._open

    def partner_ids(self) -> tuple[str, ...]:
        """Return the ids of the partners that may log in, sorted."""
        return tuple(sorted(self._keys))

    def folder_of(self, partner_id: str) -> Path:
        """Return the partner's folder on the gateway's disk (its `/` when logged in)."""
        return self._root / partner_id

    def reconfigure(self, partners: Sequence[DropBoxPartner]) -> None:
        """Serve `partners` from now on: new logins are checked against their keys.

        Raises `SftpError` before changing anything if a key is unreadable or a new partner's
        folder is a link. The sessions of partners removed, or whose keys changed, are closed;
        the others and the listener are untouched. Synchronous: nothing else runs between the
        old partners and the new.
        """
        keys = _keys_of(partners)
        for partner_id in keys.keys() - self._keys.keys():
            self._prepare(partner_id)
        revoked = [p for p, known in self._keys.items() if keys.get(p) != known]
        self._keys = keys
        for partner_id in revoked:
            for conn in list(self._sessions.get(partner_id, ())):
                conn.close()

    def _prepare(self, partner_id: str) -> None:
        """Create the partner's folders; refuse one that is a link."""
        folder = self.folder_of(partner_id)
        # A partner's folder that is a link would move its `/` wherever the link points.
        if folder.is_symlink() or not folder.resolve().is_relative_to(self._root):
            raise SftpError(f"the drop box folder of {partner_id} is a link; refusing to serve")
        for name in PARTNER_FOLDERS:
            (folder / name).mkdir(mode=0o750, parents=True, exist_ok=True)

    async def serve(self, *, task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED) -> None:
        """Create each partner's folders, listen, report the bound port, serve until cancelled."""
        for partner_id in self._keys:
            self._prepare(partner_id)
        server = await asyncssh.listen(
            self._host,
            self._port,
            server_factory=lambda: _PartnerLogin(self),
            server_host_keys=[self._host_key],
            sftp_factory=self._folder_for,
            allow_scp=False,
            login_timeout=self._login_timeout_s,
            keepalive_interval=self._keepalive_interval_s,
            keepalive_count_max=3,
            config=[],
        )
        try:
            sockets = server.sockets
            task_status.started(int(sockets[0].getsockname()[1]))
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                server.close()
                await server.wait_closed()

    def _folder_for(self, chan: asyncssh.SSHServerChannel[Any]) -> asyncssh.SFTPServer:
        partner_id = chan.get_extra_info("username")
        return _PartnerFolder(
            chan, chroot=self.folder_of(partner_id), max_file_bytes=self._max_file_bytes
        )


def _keys_of(partners: Sequence[DropBoxPartner]) -> dict[str, frozenset[bytes]]:
    """Each partner's authorized keys, as key data; `SftpError` names a partner's unreadable one."""
    keys: dict[str, frozenset[bytes]] = {}
    for partner in partners:
        try:
            keys[partner.partner_id] = frozenset(
                asyncssh.import_public_key(line).public_data for line in partner.authorized_keys
            )
        except (asyncssh.KeyImportError, ValueError) as exc:
            raise SftpError(f"partner {partner.partner_id}: key unreadable: {exc}") from None
    return keys


class _PartnerLogin(asyncssh.SSHServer):
    """One connection's login: public keys only, checked against the partner's own keys."""

    def __init__(self, box: DropBox) -> None:
        self._box = box
        self._conn: asyncssh.SSHServerConnection | None = None
        self._counted = False
        self._partner: str | None = None  # once logged in and counted against its bound

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        if self._box._open >= self._box._max_connections:
            conn.close()
            return
        self._conn = conn
        self._box._open += 1
        self._counted = True

    def connection_lost(self, exc: Exception | None) -> None:
        if self._counted:
            self._box._open -= 1
            self._counted = False
        if self._partner is not None and self._conn is not None:
            self._box._sessions[self._partner].discard(self._conn)
            self._partner = None

    def begin_auth(self, username: str) -> bool:
        return True  # every user authenticates; an unknown one has no key that passes

    def password_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return key.public_data in self._box._keys.get(username, frozenset())

    def auth_completed(self) -> None:
        if self._conn is None:
            return
        partner = str(self._conn.get_extra_info("username"))
        sessions = self._box._sessions.setdefault(partner, set())
        if len(sessions) >= self._box._max_partner_connections:
            self._conn.close()
            return
        sessions.add(self._conn)
        self._partner = partner


class _PartnerFolder(asyncssh.SFTPServer):
    """SFTP confined to one partner's folder: no climbing out, no links leading out."""

    def __init__(
        self, chan: asyncssh.SSHServerChannel[Any], *, chroot: Path, max_file_bytes: int
    ) -> None:
        super().__init__(chan, chroot=os.fsencode(chroot))
        self._top = os.fsencode(os.path.realpath(chroot))
        self._max_file_bytes = max_file_bytes

    def map_path(self, path: bytes) -> bytes:
        depth = 0
        for part in path.split(b"/"):
            if part == b"..":
                depth -= 1
                if depth < 0:
                    raise asyncssh.SFTPPermissionDenied("path leaves your folder")
            elif part not in (b"", b"."):
                depth += 1
        mapped = super().map_path(path)
        real = os.path.realpath(mapped)
        if real != self._top and not real.startswith(self._top + b"/"):
            raise asyncssh.SFTPPermissionDenied("path leads out of your folder")
        return mapped

    async def scandir(self, path: bytes) -> AsyncIterator[asyncssh.SFTPName]:
        # asyncssh's own lists `..` by its path, which at the top climbs out (and is refused
        # above): `.` and `..` both get the folder's own attributes here.
        here = self.map_path(path)
        attrs = asyncssh.SFTPAttrs.from_local(os.lstat(here))
        for dot in (b".", b".."):
            yield asyncssh.SFTPName(dot, attrs=attrs)
        with os.scandir(here) as entries:
            for entry in entries:
                yield asyncssh.SFTPName(
                    os.fsencode(entry.name),
                    attrs=asyncssh.SFTPAttrs.from_local(entry.stat(follow_symlinks=False)),
                )

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> Any:
        # A hard link planted in the folder shares its content with a file elsewhere, and no
        # path check can see where: a regular file with a second name is not opened.
        try:
            info = os.lstat(self.map_path(path))
        except FileNotFoundError:
            pass
        else:
            if stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
                raise asyncssh.SFTPPermissionDenied("a file with several names is not served")
        return super().open(path, pflags, attrs)

    def symlink(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPPermissionDenied("links are not allowed")

    def link(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPPermissionDenied("links are not allowed")

    def write(self, file_obj: object, offset: int, data: bytes) -> Any:
        if offset + len(data) > self._max_file_bytes:
            raise asyncssh.SFTPQuotaExceeded(f"files are limited to {self._max_file_bytes} bytes")
        return super().write(file_obj, offset, data)
