"""A real OpenSSH `sshd` on loopback for the SFTP tests: its own port, host key, config file,
authorized keys and log, started once per session, its folders emptied for each test.

Run as root, the login is confined to a `ChrootDirectory` (a partner's server as it is in the
field); sshd wants every component of that path root-owned and not writable by others, which
`/tmp` is not, so the chroot lives in a private folder under `/run`. Run as another user, sshd
serves that user's own account and the folders live in a plain temporary folder.
"""

from __future__ import annotations

import contextlib
import getpass
import ipaddress
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from protocols.sftp import SftpEndpoint

SSHD = Path("/usr/sbin/sshd")
FOLDERS = ("incoming", "archive", "error", "outbound")
# sshd answers with its banner well within this on a loaded 2-core machine.
START_TIMEOUT_S = 20.0
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


def new_key() -> tuple[str, str]:
    """Return a fresh ed25519 key as (OpenSSH private key text, OpenSSH public key line)."""
    key = asyncssh.generate_private_key("ssh-ed25519")
    private = key.export_private_key("openssh").decode()
    public = key.export_public_key("openssh").decode().strip()
    return private, public


@dataclass
class LocalSshd:
    """One running sshd, and what a client needs to reach it."""

    base: Path
    root: Path  # the login's `/` (chrooted) or start folder: the folders live here
    port: int
    host_key: str  # the server's public key line: what a partner's config pins
    client_key: str  # a private key the server accepts
    username: str
    chrooted: bool
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def endpoint(self, **changes: Any) -> SftpEndpoint:
        """An endpoint for this server, loopback allowed, short bounds; `changes` override."""
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": self.port,
            "username": self.username,
            "host_key": self.host_key,
            "private_key": self.client_key,
            "allow_networks": LOOPBACK,
            "connect_timeout_s": 10.0,
            "operation_timeout_s": 10.0,
            "transfer_timeout_s": 20.0,
        }
        values.update(changes)
        return SftpEndpoint(**values)

    def log(self) -> str:
        """What sshd logged so far (connections and logins): for a failing test's message."""
        return (self.base / "sshd.log").read_text(errors="replace")

    def folder(self, name: str) -> Path:
        """The server folder `name` on the local disk."""
        return self.root / name

    def reset(self) -> None:
        """Empty every folder: each test starts from a server with nothing on it."""
        for name in FOLDERS:
            shutil.rmtree(self.folder(name), ignore_errors=True)
            self.folder(name).mkdir(mode=0o755)

    def sessions(self) -> list[int]:
        """The pids of every per-connection sshd process (the listener's descendants)."""
        assert self.process is not None
        parents: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                parents[int(entry.name)] = int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
                )
            except (OSError, IndexError, ValueError):
                continue  # the process ended while we looked
        found, frontier = [], [self.process.pid]
        while frontier:
            children = [pid for pid, ppid in parents.items() if ppid in frontier]
            found += children
            frontier = children
        return found

    def signal_sessions(self, signum: int) -> int:
        """Send `signum` to every session process; return how many there were."""
        pids = self.sessions()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):  # it ended on its own meanwhile
                os.kill(pid, signum)
        return len(pids)

    def drop_sessions(self) -> int:
        """Kill every open session, as a dropped link would; return how many processes."""
        return self.signal_sessions(signal.SIGKILL)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.chrooted:
            shutil.rmtree(self.root.parent, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _chroot_root() -> Path | None:
    """A fresh folder sshd accepts as a ChrootDirectory, or None when that is not possible."""
    if os.geteuid() != 0 or not Path("/run").is_dir():
        return None
    holder = Path(tempfile.mkdtemp(prefix="gateway-sshd-", dir="/run"))
    holder.chmod(0o755)
    root = holder / "chroot"
    root.mkdir(mode=0o755)
    for part in [root, *root.parents]:
        info = part.stat()
        if info.st_uid != 0 or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            shutil.rmtree(holder, ignore_errors=True)
            return None
    return root


def _write(path: Path, text: str, mode: int = 0o600) -> None:
    path.write_text(text)
    path.chmod(mode)


def start_sshd(base: Path) -> LocalSshd:
    """Start sshd with everything under `base` (and the chroot under /run when root)."""
    if not SSHD.exists():
        raise FileNotFoundError(f"{SSHD} not found: install openssh-server (./dev does)")
    host_private, host_public = new_key()
    client_private, client_public = new_key()
    _write(base / "host_ed25519", host_private)
    _write(base / "authorized_keys", client_public + "\n")
    chroot = _chroot_root()
    root = chroot or base / "home"
    root.mkdir(mode=0o755, exist_ok=True)
    user = getpass.getuser()
    port = _free_port()
    lines = [
        f"Port {port}",
        "ListenAddress 127.0.0.1",
        f"HostKey {base / 'host_ed25519'}",
        f"PidFile {base / 'sshd.pid'}",
        f"AuthorizedKeysFile {base / 'authorized_keys'}",
        "StrictModes no",
        "UsePAM no",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes",
        "PermitRootLogin prohibit-password",
        f"AllowUsers {user}",
        "MaxStartups 50",
        "LogLevel VERBOSE",
        "Subsystem sftp internal-sftp",
        # Inside a chroot the login starts at its `/`; otherwise at the served folder.
        f"ForceCommand internal-sftp -d {'/' if chroot else root}",
    ]
    if chroot is not None:
        lines.append(f"ChrootDirectory {chroot}")
    _write(base / "sshd_config", "\n".join(lines) + "\n", 0o644)
    if os.geteuid() == 0:
        # The privilege-separation folder Debian's service unit would create.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    log = (base / "sshd.log").open("wb")
    process = subprocess.Popen(
        [str(SSHD), "-D", "-e", "-f", str(base / "sshd_config")],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    server = LocalSshd(
        base=base,
        root=root,
        port=port,
        host_key=host_public,
        client_key=client_private,
        username=user,
        chrooted=chroot is not None,
        process=process,
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            server.stop()
            raise RuntimeError(f"sshd exited: {(base / 'sshd.log').read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                if s.recv(64).startswith(b"SSH-2.0-"):
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"sshd did not answer within {START_TIMEOUT_S:g} s")
        time.sleep(0.05)  # polling a listener that is starting, bounded by the deadline
    server.reset()
    return server


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSshd]:
    """One sshd for the session (fails under CI=true when it cannot start, skips elsewhere)."""
    from conftest import service_missing  # here: conftest imports this module's fixtures

    try:
        server = start_sshd(tmp_path_factory.mktemp("sshd"))
    except (OSError, RuntimeError) as exc:
        service_missing(f"no sshd for the SFTP tests: {exc}")
    yield server
    server.stop()


@pytest.fixture
def sftp_server(sshd: LocalSshd) -> LocalSshd:
    """The session's sshd with its folders emptied."""
    sshd.reset()
    return sshd


class FolderEvents:
    """What happened to the names in one folder, in order, read from the kernel (inotify).

    The kernel queues the events as they happen, so reading them after the operation misses
    nothing and races nothing: `events()` gives (event, name) pairs, event one of `created`,
    `closed_written`, `moved_from`, `moved_to`, `deleted`.
    """

    _MASKS = {
        0x008: "closed_written",
        0x040: "moved_from",
        0x080: "moved_to",
        0x100: "created",
        0x200: "deleted",
    }
    _NONBLOCK = 0o4000

    def __init__(self, folder: Path) -> None:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        self._fd = libc.inotify_init1(self._NONBLOCK)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        mask = sum(self._MASKS)
        if libc.inotify_add_watch(self._fd, os.fsencode(folder), mask) < 0:
            os.close(self._fd)
            raise OSError(ctypes.get_errno(), "inotify_add_watch")

    def events(self) -> list[tuple[str, str]]:
        import struct

        found: list[tuple[str, str]] = []
        while True:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                return found
            offset = 0
            while offset < len(data):
                _, mask, _, size = struct.unpack_from("iIII", data, offset)
                raw = data[offset + 16 : offset + 16 + size]
                offset += 16 + size
                name = raw.rstrip(b"\0").decode()
                found += [(what, name) for bit, what in self._MASKS.items() if mask & bit]

    def close(self) -> None:
        os.close(self._fd)
