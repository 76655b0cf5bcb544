"""The port a file channel's transport implements: one partner's folders, on whatever transport.

`protocols/sftp` (a partner's SFTP server) and a local folder (the hosted drop box, tests)
implement it structurally; actors never import a transport.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Protocol

from canonical.files import RemoteFile

__all__ = ["FileSource", "Folder"]

Folder = Literal["archive", "error"]


class FileSource(Protocol):
    """A partner's incoming folder, its archive and error folders, and its outbound folder."""

    async def list_incoming(self) -> list[RemoteFile]:
        """The files in the incoming folder; temporary names (`.tmp`, `.part`), dotfiles,
        folders and symlinks are never listed."""
        ...

    async def fetch(self, name: str, destination: Path, *, max_bytes: int) -> None:
        """Copy incoming `name` to the local `destination`; raises `ValueError` past `max_bytes`."""
        ...

    async def move(self, name: str, folder: Folder) -> bool:
        """Move incoming `name` into `folder`, never overwriting (a suffix is added there).

        Idempotent: returns False when `name` is no longer in the incoming folder (a move that
        completed before a dropped connection), True when it moved it now.
        """
        ...

    async def put(self, name: str, body: bytes) -> str:
        """Write `body` to the outbound folder under a temporary name, then rename it to `name`
        (or `name` with a suffix if taken: never overwrite); returns the final name."""
        ...
