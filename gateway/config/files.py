"""A partner's file channel: where its files arrive, and which files are which documents.

The files come from `folder` on this machine (a mounted share), or, when the partner has a
`[partners.sftp]` table, from its SFTP server or its folder in the hosted drop box; then no
`folder` is given here, and the polling (`poll_interval_s`, `settle_s`, `max_file_bytes`) is
set in the sftp table. The rules below say which files are which documents either way.

```toml
[partners.files]
folder = "/srv/dropbox/acme"        # incoming/ archive/ error/ outbound/ under it
poll_interval_s = 10
settle_s = 2                        # unchanged this long across two listings: complete

[[partners.files.rules]]
pattern = "stock_*.csv"
document_type = "inventory_position"
format = "csv"
[partners.files.rules.csv]
columns = { "Item" = "sku", "Warehouse" = "location_id", "Qty" = "on_hand", "Date" = "as_of" }
constants = { uom = "EA" }
# supplier_sku,sku,stocking_uom,units_per_pack,pack_uom; absolute or from the working folder
items_file = "/etc/gateway/acme-items.csv"
```

Everything is data: a new partner's columns, cross-reference and packs need no code. A rule's
problems (a column mapped to a field the document has not, a cross-reference file that does
not read) are reported by `gateway config check` like any other.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from canonical.csv import (
    CSV_DOCUMENTS,
    CrossReferenceError,
    CsvFeed,
    ItemCrossReference,
    cross_reference,
    load_cross_reference,
)
from canonical.documents import DOCUMENT_TYPES
from gateway.config.base import MIB, Base, Count, Problem, Seconds, known

__all__ = ["CsvMapping", "FileChannelConfig", "FileRuleConfig", "source_problems"]

# The largest file a channel takes; bigger ones go to the error folder unread.
DEFAULT_MAX_FILE_BYTES = 64 * MIB
MAX_FILE_BYTES_CEILING = 1024 * MIB
# Items listed inline in the config; a longer table belongs in an items file.
MAX_INLINE_ITEMS = 10_000
# Rules (file patterns) one channel may have.
MAX_RULES = 50

FileFormat = Literal["csv", "x12"]


class CsvMapping(Base, frozen=True):
    """How a CSV file's columns map to a document's fields; see the module docstring."""

    columns: dict[str, str]
    constants: dict[str, str] = {}
    ignored: frozenset[str] = frozenset()
    delimiter: Annotated[str, msgspec.Meta(min_length=1, max_length=1)] = ","
    items: Annotated[tuple[ItemCrossReference, ...], msgspec.Meta(max_length=MAX_INLINE_ITEMS)] = ()
    # A CSV of the cross-reference (canonical.csv.CROSS_REFERENCE_COLUMNS), read at start.
    items_file: str | None = None

    def problems(self) -> Iterator[Problem]:
        with known():
            if not self.columns:
                yield "columns", "map at least one column"
        with known():
            try:
                cross_reference(self.items)
            except CrossReferenceError as exc:
                yield "items", str(exc)
        with known():
            if self.items_file is not None:
                try:
                    load_cross_reference(Path(self.items_file))
                except CrossReferenceError as exc:
                    yield "items_file", str(exc)


class FileRuleConfig(Base, frozen=True):
    """Files whose name matches `pattern` (shell-style) are `document_type` in `format`."""

    pattern: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    document_type: str
    format: FileFormat = "csv"
    csv: CsvMapping | None = None

    def problems(self) -> Iterator[Problem]:
        with known():
            if self.document_type not in DOCUMENT_TYPES:
                yield "document_type", f"unknown document type {self.document_type!r}"
        with known():
            if self.format == "csv":
                yield from self._csv_problems()

    def _csv_problems(self) -> Iterator[Problem]:
        if self.csv is None:
            yield "csv", "a csv rule needs a [csv] mapping (columns)"
            return
        if self.document_type not in CSV_DOCUMENTS:
            flat = ", ".join(CSV_DOCUMENTS)
            yield "document_type", f"CSV maps only flat documents: {flat}"
            return
        fields = set(DOCUMENT_TYPES[self.document_type].__struct_fields__)
        for column, field in self.csv.columns.items():
            if field not in fields:
                yield f"csv.columns.{column}", f"{self.document_type} has no field {field!r}"
        for field in self.csv.constants:
            if field not in fields:
                yield f"csv.constants.{field}", f"{self.document_type} has no field {field!r}"

    def csv_feed(self) -> CsvFeed | None:
        """The rule's CSV mapping as `canonical.csv` reads it (None for other formats).

        Reads the items file; raises `CrossReferenceError` if it changed and no longer reads.
        """
        if self.format != "csv" or self.csv is None:
            return None
        items = cross_reference(self.csv.items)
        if self.csv.items_file is not None:
            items.update(load_cross_reference(Path(self.csv.items_file)))
        return CsvFeed(
            document_type=self.document_type,
            columns=dict(self.csv.columns),
            constants=dict(self.csv.constants),
            ignored=self.csv.ignored,
            delimiter=self.csv.delimiter,
            items=items,
        )


class FileChannelConfig(Base, frozen=True):
    """A partner's file channel: a folder polled for complete files, and its rules."""

    rules: Annotated[tuple[FileRuleConfig, ...], msgspec.Meta(min_length=1, max_length=MAX_RULES)]
    # The partner's folders (incoming/, archive/, error/, outbound/) on this machine: the
    # hosted drop box's folder for this partner, or a mounted share.
    folder: str | None = None
    poll_interval_s: Seconds = 10.0
    # SFTP mtimes are whole seconds: a file is complete once unchanged across two listings
    # at least this far apart (at least 1 s).
    settle_s: Annotated[float, msgspec.Meta(ge=1)] = 2.0
    max_file_bytes: Annotated[int, msgspec.Meta(ge=1, le=MAX_FILE_BYTES_CEILING)] = (
        DEFAULT_MAX_FILE_BYTES
    )
    max_files_per_round: Count = 100
    # Rows handed to the store at a time while a long file is taken.
    stage_rows: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 500
    # Bad rows or sets a file may have and still be accepted for the good ones.
    max_problems: Annotated[int, msgspec.Meta(ge=0, le=100_000)] = 1000

    def problems(self) -> Iterator[Problem]:
        # Whether a folder is needed depends on the partner's `sftp` table: `source_problems`.
        with known():
            patterns = [rule.pattern for rule in self.rules]
            for i, pattern in enumerate(patterns):
                if pattern in patterns[:i]:
                    yield f"rules[{i}].pattern", f"pattern {pattern!r} repeated"


# The polling fields an SFTP channel takes from its `[partners.sftp]` table instead.
_POLLING = {
    field.name: field.default
    for field in msgspec.structs.fields(FileChannelConfig)
    if field.name in ("poll_interval_s", "settle_s", "max_file_bytes")
}


def source_problems(files: FileChannelConfig | None, sftp: object | None) -> Iterator[Problem]:
    """Yield what is wrong with where a partner's files come from (paths from the partner).

    The files come from one place: the `folder` on this machine, or the `[partners.sftp]`
    table (its own server, or its folder in the hosted drop box), which then also says how
    often to poll, how long a file must settle and how big it may be. `sftp` is the partner's
    `SftpChannel` (typed loosely: this module imports no sibling section).
    """
    if files is None:
        return
    with known():
        if sftp is None and files.folder is None:
            yield "files.folder", "give the partner's folder, or a [partners.sftp] table"
        elif sftp is not None and files.folder is not None:
            yield "files.folder", "the files come from [partners.sftp]; delete folder"
    with known():
        if sftp is not None:
            for field, default in _POLLING.items():
                if getattr(files, field) != default:
                    yield f"files.{field}", f"an SFTP channel's {field} is set in [partners.sftp]"
