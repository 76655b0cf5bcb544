"""The SFTP client side of a file channel: one partner's server, as a `FileSource`.

`SftpSource` implements `actors.files.source.FileSource` structurally (transports never import
actors). Each operation is bounded in time. The connection is opened on first use, through the
egress guard (the host is resolved once, the guard judges the address, and the client connects
to that address), with the partner's pinned host key as the only key trusted: an unknown or
changed key fails before any login. A connection that drops is opened again, and the operation
that met the drop is tried once more on the new one; every operation is written so that a second
try after a drop never does the work twice (see `move` and `put`).
"""

from __future__ import annotations

import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Literal, Self, TypeVar, cast

import anyio
import asyncssh

from canonical.files import RemoteFile
from protocols.http.egress import resolve_target
from protocols.sftp.endpoint import SftpEndpoint
from protocols.sftp.errors import (
    SftpAuthRefused,
    SftpError,
    SftpFileTooLarge,
    SftpHostKeyRefused,
    SftpNameExhausted,
    SftpUnavailable,
)
from protocols.sftp.names import is_listed_name, is_plain_name, suffixed_names, temporary_name

__all__ = ["CHUNK_BYTES", "SftpSource"]

# One read or write request; asyncssh keeps several in flight for larger transfers.
CHUNK_BYTES = 64 * 1024

T = TypeVar("T")

# What a dropped or dead connection looks like from asyncssh: tried again on a new connection.
_DROPPED: tuple[type[BaseException], ...] = (
    asyncssh.DisconnectError,  # ConnectionLost among them; the refusals come from connect only
    asyncssh.ChannelOpenError,
    asyncssh.sftp.SFTPConnectionLost,
    asyncssh.sftp.SFTPNoConnection,
    ConnectionError,
    EOFError,
)


class SftpSource:
    """One partner's folders on its SFTP server: list, fetch, move, put.

    Use as `async with SftpSource(endpoint) as source:` (or call `aclose()`); it connects on
    first use and again after a drop. One operation at a time per source (the poller's rounds
    are sequential); a lock makes concurrent callers take turns rather than race the connection.
    """

    def __init__(self, endpoint: SftpEndpoint) -> None:
        if not endpoint.host_key.strip():
            # The config refuses this already; a caller building an endpoint by hand is told too.
            raise SftpHostKeyRefused("no pinned host key: refusing to connect to an unknown host")
        try:
            self._host_key = asyncssh.import_public_key(endpoint.host_key)
        except (asyncssh.KeyImportError, ValueError) as exc:
            raise SftpHostKeyRefused(f"pinned host key unreadable: {exc}") from None
        self._client_keys: list[asyncssh.SSHKey] | None = None
        if endpoint.private_key is not None:
            try:
                self._client_keys = [asyncssh.import_private_key(endpoint.private_key)]
            except (asyncssh.KeyImportError, ValueError):
                unreadable = "private key unreadable (OpenSSH or PEM, unencrypted)"
                raise SftpAuthRefused(unreadable) from None
        self._endpoint = endpoint
        self._lock = anyio.Lock()
        self._conn: asyncssh.SSHClientConnection | None = None
        self._sftp: asyncssh.SFTPClient | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection, if one is open; the next operation would open a new one."""
        with anyio.CancelScope(shield=True):
            await self._drop()

    @property
    def endpoint(self) -> SftpEndpoint:
        """Return the server this source reads and writes (its repr hides the secrets)."""
        return self._endpoint

    # -- the FileSource port ---------------------------------------------------------------

    async def list_incoming(self) -> list[RemoteFile]:
        """List the regular files of the incoming folder that may be taken, by name.

        Temporary names, dotfiles, folders and symlinks are left out; at most `max_listing`
        entries are read (the rest show up once these have been moved away).
        """
        folder = self._endpoint.folders.incoming
        limit = self._endpoint.max_listing

        async def listing(sftp: asyncssh.SFTPClient) -> list[RemoteFile]:
            found: list[RemoteFile] = []
            seen = 0
            async for entry in sftp.scandir(folder):
                seen += 1
                if seen > limit:
                    break
                name, attrs = str(entry.filename), entry.attrs
                # The server's readdir gives lstat attributes: a symlink is not a regular file.
                if not is_listed_name(name) or attrs.permissions is None:
                    continue
                if not stat.S_ISREG(attrs.permissions):
                    continue
                found.append(RemoteFile(name=name, size=attrs.size or 0, mtime=attrs.mtime or 0))
            return sorted(found, key=lambda f: f.name)

        return await self._attempt(f"list {folder}", listing, self._endpoint.operation_timeout_s)

    async def fetch(self, name: str, destination: Path, *, max_bytes: int) -> None:
        """Copy incoming `name` to local `destination`; `SftpFileTooLarge` past `max_bytes`.

        The local file is written whole or removed: a fetch cut short leaves nothing behind.
        """
        path = self._incoming(name)

        async def copy(sftp: asyncssh.SFTPClient) -> None:
            attrs = await sftp.lstat(path)
            if attrs.permissions is None or not stat.S_ISREG(attrs.permissions):
                raise SftpError(f"{name} is not a regular file")
            if attrs.size is not None and attrs.size > max_bytes:
                raise SftpFileTooLarge(f"{name} is {attrs.size} bytes, over {max_bytes}")
            written = 0
            try:
                async with (
                    sftp.open(path, "rb") as remote,
                    await anyio.open_file(destination, "wb") as local,
                ):
                    # Opened "rb": the chunks are bytes (asyncssh types them as AnyStr).
                    while chunk := cast(bytes, await remote.read(CHUNK_BYTES)):
                        written += len(chunk)
                        # The size may grow after the stat: the bound is on what is read.
                        if written > max_bytes:
                            raise SftpFileTooLarge(f"{name} grew past {max_bytes} bytes")
                        await local.write(chunk)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await anyio.Path(destination).unlink(missing_ok=True)
                raise

        await self._attempt(f"fetch {path}", copy, self._endpoint.transfer_timeout_s)

    async def move(self, name: str, folder: Literal["archive", "error"]) -> bool:
        """Move incoming `name` into the archive or error folder, never overwriting.

        Plain SFTP `rename` refuses a taken name (OpenSSH links then unlinks), so a taken name
        is retried with a suffix. Returns False when `name` is no longer in the incoming folder:
        a move that completed before a dropped connection is not done twice.
        """
        source = self._incoming(name)
        target_folder = getattr(self._endpoint.folders, folder)

        async def rename(sftp: asyncssh.SFTPClient) -> bool:
            for candidate in suffixed_names(name):
                if not await _exists(sftp, source):
                    return False
                try:
                    await sftp.rename(source, f"{target_folder}/{candidate}")
                except (asyncssh.sftp.SFTPFailure, asyncssh.sftp.SFTPFileAlreadyExists):
                    # The name is taken in the target (or the source went meanwhile: the
                    # next turn of the loop tells which).
                    if await _exists(sftp, f"{target_folder}/{candidate}"):
                        continue
                    raise
                return True
            raise SftpNameExhausted(f"every suffixed name of {name} is taken in {folder}")

        what = f"move {source} to {target_folder}"
        return await self._attempt(what, rename, self._endpoint.operation_timeout_s)

    async def put(self, name: str, body: bytes) -> str:
        """Write `body` to the outbound folder under a temporary name, then rename it to `name`
        (or a suffixed name if taken: never overwrite); return the final name.

        A second try after a drop knows what the first did: the temporary name is unique to
        this put, so if it is gone the rename happened, under the name last tried.
        """
        if not is_plain_name(name):
            raise SftpError(f"{name!r} is not a plain file name")
        folder = self._endpoint.folders.outbound
        temporary = f"{folder}/{temporary_name(name)}"
        written = False
        tried: str | None = None

        async def write_then_rename(sftp: asyncssh.SFTPClient) -> str:
            nonlocal written, tried
            if written and not await _exists(sftp, temporary):
                if tried is None:
                    raise SftpError(f"the temporary file of {name} vanished before its rename")
                return tried
            if not written:
                # A try cut short may have left a partial temporary file: start it again.
                async with sftp.open(temporary, "wb") as remote:
                    for start in range(0, len(body), CHUNK_BYTES):
                        await remote.write(body[start : start + CHUNK_BYTES], start)
                written = True
            for candidate in suffixed_names(name):
                tried = candidate
                try:
                    await sftp.rename(temporary, f"{folder}/{candidate}")
                except (asyncssh.sftp.SFTPFailure, asyncssh.sftp.SFTPFileAlreadyExists):
                    if await _exists(sftp, f"{folder}/{candidate}"):
                        continue
                    raise
                return candidate
            raise SftpNameExhausted(f"every suffixed name of {name} is taken in outbound")

        what = f"put {folder}/{name}"
        return await self._attempt(what, write_then_rename, self._endpoint.transfer_timeout_s)

    # -- connection ------------------------------------------------------------------------

    def _incoming(self, name: str) -> str:
        if not is_plain_name(name):
            raise SftpError(f"{name!r} is not a plain file name")
        return f"{self._endpoint.folders.incoming}/{name}"

    async def _attempt(
        self,
        what: str,
        operation: Callable[[asyncssh.SFTPClient], Awaitable[T]],
        timeout_s: float,
    ) -> T:
        """Run `operation` on the connection within `timeout_s`; after a drop, once more on a
        new connection. Errors leave as `SftpError`s (or the guard's `EgressRefused`)."""
        async with self._lock:
            for attempt in (1, 2):
                sftp = await self._connected()
                try:
                    with anyio.fail_after(timeout_s):
                        return await operation(sftp)
                except _DROPPED as exc:
                    await self._drop()
                    if attempt == 2:
                        dropped = f"{what}: connection dropped twice: {_said(exc)}"
                        raise SftpUnavailable(dropped) from exc
                except TimeoutError as exc:
                    # The state of the connection is unknown: the next operation starts afresh.
                    await self._drop()
                    raise SftpUnavailable(f"{what}: no answer within {timeout_s:g} s") from exc
                except asyncssh.sftp.SFTPError as exc:
                    raise SftpError(f"{what}: {exc.reason or type(exc).__name__}") from exc
            raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def _connected(self) -> asyncssh.SFTPClient:
        if self._sftp is not None and self._conn is not None and not self._conn.is_closed():
            return self._sftp
        await self._drop()
        endpoint = self._endpoint
        # The egress guard: resolve once, refuse non-public addresses unless allowed, and
        # connect to the address judged (a DNS answer changing after the check moves nothing).
        address = await resolve_target(endpoint.host, endpoint.port, endpoint.allow_networks)
        try:
            with anyio.fail_after(endpoint.connect_timeout_s):
                conn = await asyncssh.connect(
                    str(address),
                    endpoint.port,
                    username=endpoint.username,
                    # The pinned key and nothing else: (trusted host keys, CA keys, revoked).
                    known_hosts=([self._host_key], [], []),
                    client_keys=self._client_keys,
                    password=endpoint.password,
                    # Nothing from the gateway's own account: no agent, no ~/.ssh/config.
                    agent_path=None,
                    config=[],
                    x509_trusted_certs=None,
                    gss_auth=False,
                    kbdint_auth=False,
                    host_based_auth=False,
                    connect_timeout=endpoint.connect_timeout_s,
                    keepalive_interval=endpoint.keepalive_interval_s,
                    keepalive_count_max=3,
                )
        except TimeoutError as exc:
            raise SftpUnavailable(
                f"no connection to {endpoint.host} within {endpoint.connect_timeout_s:g} s"
            ) from exc
        except asyncssh.HostKeyNotVerifiable as exc:
            raise SftpHostKeyRefused(
                f"{endpoint.host} did not present the pinned host key: {_said(exc)}"
            ) from exc
        except asyncssh.PermissionDenied as exc:
            raise SftpAuthRefused(f"{endpoint.host} refused the login: {_said(exc)}") from exc
        except (asyncssh.Error, OSError) as exc:
            raise SftpUnavailable(f"cannot connect to {endpoint.host}: {_said(exc)}") from exc
        try:
            with anyio.fail_after(endpoint.operation_timeout_s):
                sftp = await conn.start_sftp_client()
        except (TimeoutError, asyncssh.Error, OSError) as exc:
            conn.abort()
            raise SftpUnavailable(f"{endpoint.host} opened no SFTP session: {_said(exc)}") from exc
        self._conn, self._sftp = conn, sftp
        return sftp

    async def _drop(self) -> None:
        conn, self._conn, self._sftp = self._conn, None, None
        if conn is not None:
            conn.abort()
            with anyio.move_on_after(self._endpoint.operation_timeout_s):
                await conn.wait_closed()


async def _exists(sftp: asyncssh.SFTPClient, path: str) -> bool:
    """True when `path` exists (not following a final symlink)."""
    try:
        await sftp.lstat(path)
    except asyncssh.sftp.SFTPNoSuchFile:
        return False
    return True


def _said(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
