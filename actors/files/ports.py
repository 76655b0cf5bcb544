"""What the file intake needs from the store, as a Protocol and values the gateway implements
(gateway/file_channels.py adapts `store.files`): the actors import no store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from msgspec import Struct

from actors.files.source import Folder
from canonical.files import FileRow, Fingerprint
from canonical.x12 import InterchangeKey, X12Reading

__all__ = [
    "FileRow",
    "Fingerprint",
    "KnownFile",
    "OutgoingFile",
    "PendingMove",
    "ReceivedFiles",
    "Verdict",
    "X12Files",
]

Verdict = Literal["accepted", "refused"]


class KnownFile(Struct, frozen=True, kw_only=True):
    """A file committed before: its verdict and the folder it belongs in."""

    file_id: int
    verdict: Verdict
    folder: Folder


class PendingMove(Struct, frozen=True, kw_only=True):
    """A committed file still to move on the partner's side (its listing entry as committed)."""

    file_id: int
    name: str
    size: int
    mtime: int
    folder: Folder


class ReceivedFiles(Protocol):
    """The store's record of received files: one transaction per file, moves as state."""

    async def known(self, fingerprint: Fingerprint) -> KnownFile | None:
        """The committed file with this fingerprint, if any (a cheap check before decoding)."""
        ...

    async def begin(self, fingerprint: Fingerprint) -> int | KnownFile:
        """Claim the fingerprint: a file id to stage rows under, or the file committed before."""
        ...

    async def stage(self, file_id: int, rows: Sequence[FileRow]) -> None:
        """Keep a chunk of rows, invisible until `finish`."""
        ...

    async def finish(
        self,
        file_id: int,
        *,
        verdict: Verdict,
        documents: int,
        problems: int,
        reason: str | None,
        rows: Sequence[FileRow],
    ) -> None:
        """Commit the file: its staged rows (none if refused) and `rows` into the outbox, and
        its verdict, in one transaction; from then its move is pending."""
        ...

    async def pending_moves(
        self, partner_id: str, channel: str, limit: int
    ) -> list[PendingMove]: ...

    async def moved(self, file_id: int) -> None: ...


class OutgoingFile(Struct, frozen=True, kw_only=True):
    """A file the store holds for a partner's outbound folder (an ack, an interchange)."""

    id: int
    name: str
    body: bytes


class X12Files(Protocol):
    """What an X12 channel needs from the store beyond `ReceivedFiles`."""

    async def seen(self, partner_id: str, keys: Sequence[InterchangeKey]) -> set[InterchangeKey]:
        """The keys among `keys` accepted before, within the replay window."""
        ...

    async def finish(
        self,
        file_id: int,
        *,
        verdict: Verdict,
        documents: int,
        problems: int,
        reason: str | None,
        rows: Sequence[FileRow],
        answers: X12Reading,
        error_folder: bool,
    ) -> None:
        """`ReceivedFiles.finish`, plus in the same transaction: the interchange keys (when
        accepted), the acks owed (numbered from the partner's sequences, kept to send), and
        the 997/999s the file carried applied to the sets the gateway sent."""
        ...

    async def outgoing(self, partner_id: str, channel: str, limit: int) -> list[OutgoingFile]:
        """Files still to put in the partner's outbound folder, oldest first."""
        ...

    async def put_done(self, file_id: int, final_name: str) -> None:
        """Record that an outgoing file was put (under `final_name`)."""
        ...
