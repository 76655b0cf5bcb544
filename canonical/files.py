"""What a file carries, in transport-neutral terms: its listing entry, and the documents a decoder
found in it, each with its place in the file.

A file is one acceptance: the intake commits its fingerprint and every document it carries in one
transaction, with `Provenance` on each envelope so an operator can walk from a message back to
the file, interchange, group, set or CSV line it came from. Decoders (CSV, X12) return a
`FileDecoding`; the transports (SFTP client, hosted drop box, a local folder) list `RemoteFile`s.
"""

from __future__ import annotations

from msgspec import Struct

from canonical.documents import Document
from canonical.errors import FieldError

__all__ = [
    "FileDecoding",
    "FileDocument",
    "FileProblem",
    "FileRow",
    "Fingerprint",
    "Provenance",
    "RemoteFile",
]


class RemoteFile(Struct, frozen=True, kw_only=True):
    """One entry of a partner's incoming folder: its name, size in bytes and mtime (whole seconds).

    SFTP gives mtime in whole seconds, so "complete" means unchanged across two listings taken at
    least one second apart (FIELD-NOTES "SFTP").
    """

    name: str
    size: int
    mtime: int


class Fingerprint(Struct, frozen=True, kw_only=True):
    """What makes a file the same file, whatever its name says: who, where, size, mtime, hash.

    The intake claims it and the store keeps it unique; both speak this one value.
    """

    partner_id: str
    channel: str
    path: str
    size: int
    mtime: int
    sha256: str


class FileRow(Struct, frozen=True, kw_only=True, array_like=True):
    """One outbox row a file carries (an envelope, encoded), at its `position` in the file.

    `array_like`: rows travel to the store's writer process by the thousand.
    """

    position: int
    message_id: str
    document_type: str
    schema_version: int
    routing_key: str
    correlation_id: str
    causation_id: str | None
    idempotency_key: str
    body: bytes


class Provenance(Struct, frozen=True, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """Where in a received file a document came from."""

    file: str  # the file's name as the partner gave it
    sha256: str  # hex digest of the file's content: with the name, size and mtime, its fingerprint
    line: int | None = None  # CSV: the line of the row, the header being line 1
    interchange: str | None = None  # X12: ISA13
    group: str | None = None  # X12: GS06
    transaction_set: str | None = None  # X12: ST02


class FileDocument(Struct, frozen=True, kw_only=True):
    """One canonical document a file carries, and where it was found."""

    document: Document
    provenance: Provenance


class FileProblem(Struct, frozen=True, kw_only=True):
    """A part of a file that could not become a document (a bad row, a rejected set).

    The rest of the file is still accepted; each problem becomes an exception an operator sees,
    naming the file and the line or set.
    """

    provenance: Provenance
    reason: str  # machine-readable: "bad_row", "unknown_item", "x12_set_rejected", ...
    detail: str  # what a person reads
    errors: tuple[FieldError, ...] = ()


class FileDecoding(Struct, frozen=True, kw_only=True):
    """What a decoder made of one file: documents, problems, or a refusal of the whole file."""

    documents: tuple[FileDocument, ...] = ()
    problems: tuple[FileProblem, ...] = ()
    refused: str | None = None  # the whole file is refused (bad header, envelope error): why
