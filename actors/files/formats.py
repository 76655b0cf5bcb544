"""The decoders a file rule may name, keyed by format: each turns a spooled file into documents
and problems, or refuses it whole.

The intake is format-neutral: it asks `DECODERS[rule.format]`. A decoder is a generator, so a
long file is read as the intake consumes it (bounded memory). To add a format, write its
adapter here and add it to `DECODERS` with one line (X12: `canonical.x12.decode_file`, whose
`.decoding` is a `FileDecoding`, fits `from_decoding`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Protocol

from msgspec import Struct

from canonical.csv import CsvFeed, CsvRefused, read_csv
from canonical.errors import GatewayError
from canonical.files import FileDecoding, FileDocument, FileProblem
from canonical.x12 import X12Profile, decode_file

__all__ = [
    "DECODERS",
    "FileDecoder",
    "FileRefused",
    "FileRule",
    "csv_decoder",
    "from_decoding",
    "x12_decoder",
]

Item = FileDocument | FileProblem


class FileRefused(GatewayError):
    """A file refused whole; `code` is the machine-readable why (`bad_header`, `no_rule`...)."""

    status, reason, title = 422, "file-refused", "File refused"

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


class FileRule(Struct, frozen=True, kw_only=True):
    """Which files of a channel are which documents: a name pattern, a type, a format.

    `options` is the format's own settings (a `CsvFeed` for "csv", an X12 profile for "x12").
    """

    pattern: str
    document_type: str
    format: str
    options: object = None


class FileDecoder(Protocol):
    def __call__(
        self, path: Path, *, file_name: str, sha256: str, rule: FileRule
    ) -> Iterator[Item]:
        """Yield the file's documents and problems in file order; raise `FileRefused`."""
        ...


def csv_decoder(path: Path, *, file_name: str, sha256: str, rule: FileRule) -> Iterator[Item]:
    """A CSV feed (`canonical.csv`), read one row at a time."""
    if not isinstance(rule.options, CsvFeed):
        raise FileRefused("no_mapping", f"the rule for {rule.pattern!r} has no CSV mapping")
    with path.open("rb") as stream:
        try:
            yield from read_csv(stream, file_name=file_name, sha256=sha256, feed=rule.options)
        except CsvRefused as exc:
            raise FileRefused(exc.code, exc.detail) from None


def from_decoding(decoding: FileDecoding) -> Iterator[Item]:
    """Adapt a whole-file decoder's `FileDecoding` (X12) to the intake's stream."""
    if decoding.refused is not None:
        raise FileRefused("refused", decoding.refused)
    yield from decoding.documents
    yield from decoding.problems


def x12_decoder(path: Path, *, file_name: str, sha256: str, rule: FileRule) -> Iterator[Item]:
    """An X12 file (`canonical.x12`), with the rule's profile. Read whole: the poller bounds
    its size. Without the store's X12 port (`actors.files.x12`) nothing checks replays or
    sends acks: the intake uses that path when it has the port."""
    profile = rule.options if isinstance(rule.options, X12Profile) else None
    reading = decode_file(path.read_bytes(), file_name=file_name, sha256=sha256, profile=profile)
    yield from from_decoding(reading.decoding)


DECODERS: Mapping[str, FileDecoder] = MappingProxyType({"csv": csv_decoder, "x12": x12_decoder})
