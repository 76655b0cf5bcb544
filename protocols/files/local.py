"""A partner's folders on this machine: the hosted drop box's folder, or a test's.

Implements `actors.files.source.FileSource` structurally (protocols import no actor). The
folders are `incoming/`, `archive/`, `error/` and `outbound/` under one root. Moves and puts
claim their target the way OpenSSH's SFTP rename does, with `link` then `unlink`: a name
taken in the target fails the link instead of being overwritten, and the next suffix is tried.
Which names are listed and which suffix a taken name gets are the SFTP transport's rules
(`protocols.sftp.names`): a partner sees the same manners on its own server and in the drop box.
Blocking calls run in a worker thread.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Literal

import anyio.to_thread

from canonical.files import RemoteFile
from protocols.sftp.names import MAX_NAME_SUFFIX, is_listed_name, suffixed_names

__all__ = ["FOLDERS", "MAX_SUFFIX", "LocalFolderSource", "skipped"]

FOLDERS = ("incoming", "archive", "error", "outbound")
# `stem-1.ext`, `stem-2.ext`... at most this many before a move or put gives up (a folder with
# that many copies of one name is a problem for a person, not a loop).
MAX_SUFFIX = MAX_NAME_SUFFIX
# Bytes copied at a time by `fetch`.
CHUNK_BYTES = 256 * 1024


def skipped(name: str) -> bool:
    """Whether a listing leaves `name` out: a dotfile or a temporary name (any case)."""
    return not is_listed_name(name)


class LocalFolderSource:
    """One partner's `incoming/`, `archive/`, `error/` and `outbound/` folders under `root`."""

    def __init__(self, root: Path, *, create: bool = True) -> None:
        self.root = root
        if create:
            for folder in FOLDERS:
                (root / folder).mkdir(parents=True, exist_ok=True)

    def folder(self, name: Literal["incoming", "archive", "error", "outbound"]) -> Path:
        return self.root / name

    async def list_incoming(self) -> list[RemoteFile]:
        return await anyio.to_thread.run_sync(self._list)

    async def fetch(self, name: str, destination: Path, *, max_bytes: int) -> None:
        await anyio.to_thread.run_sync(self._fetch, name, destination, max_bytes)

    async def move(self, name: str, folder: Literal["archive", "error"]) -> bool:
        return await anyio.to_thread.run_sync(self._move, name, folder)

    async def put(self, name: str, body: bytes) -> str:
        return await anyio.to_thread.run_sync(self._put, name, body)

    def _list(self) -> list[RemoteFile]:
        files = []
        with os.scandir(self.folder("incoming")) as entries:
            for entry in entries:
                if skipped(entry.name) or entry.is_symlink() or not entry.is_file():
                    continue
                info = entry.stat(follow_symlinks=False)
                files.append(
                    RemoteFile(name=entry.name, size=info.st_size, mtime=int(info.st_mtime))
                )
        return sorted(files, key=lambda f: (f.mtime, f.name))

    def _incoming(self, name: str) -> Path:
        if name != os.path.basename(name) or name in ("", ".", ".."):
            raise ValueError(f"not a plain file name: {name!r}")
        return self.folder("incoming") / name

    def _fetch(self, name: str, destination: Path, max_bytes: int) -> None:
        source = self._incoming(name)
        # O_NOFOLLOW: a symlink planted after the listing is not followed out of the folder.
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as handle, destination.open("wb") as out:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise ValueError(f"{name!r} is not a regular file")
            copied = 0
            while chunk := handle.read(CHUNK_BYTES):
                copied += len(chunk)
                if copied > max_bytes:
                    raise ValueError(f"{name!r} is larger than {max_bytes} bytes")
                out.write(chunk)

    def _move(self, name: str, folder: Literal["archive", "error"]) -> bool:
        source = self._incoming(name)
        if not source.exists() and not source.is_symlink():
            return False  # moved before (the answer was lost): done
        self._claim(source, self.folder(folder), name)
        return True

    def _put(self, name: str, body: bytes) -> str:
        if name != os.path.basename(name) or skipped(name):
            raise ValueError(f"not a plain, visible file name: {name!r}")
        outbound = self.folder("outbound")
        temporary = outbound / f".{name}.{os.getpid()}.tmp"
        with temporary.open("wb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        return self._claim(temporary, outbound, name)

    def _claim(self, source: Path, folder: Path, name: str) -> str:
        """Link `source` into `folder` as `name` (or the first free `stem-N.ext`); unlink it."""
        for target in suffixed_names(name, limit=MAX_SUFFIX):
            try:
                os.link(source, folder / target, follow_symlinks=False)
            except FileExistsError:
                continue
            source.unlink()
            return target
        raise FileExistsError(f"{name!r} and {MAX_SUFFIX} suffixed names are taken in {folder}")
