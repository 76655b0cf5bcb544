"""Read a partner's CSV file into canonical documents, one row at a time, in bounded memory.

`read_csv` is a generator: it holds one row, never the file, so a feed of any length costs the
same memory (tests/test_csv_memory.py measures it). The header is checked before the first
row: decoded `utf-8-sig` (Excel's "CSV UTF-8" starts with a BOM), names trimmed, and a mapped
column missing or a column nobody mapped refuses the whole file (`CsvRefused`). After that a
bad row is a `FileProblem` naming the line and the reason, and the good rows go on.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import IO, Any

import msgspec

from canonical.csv.feed import CSV_DOCUMENTS, CsvFeed
from canonical.documents import DOCUMENT_TYPES
from canonical.errors import FieldError, GatewayError
from canonical.files import FileDocument, FileProblem, Provenance

__all__ = ["CsvRefused", "read_csv"]

# Characters of a bad value quoted back in a problem's detail.
QUOTED_VALUE_CHARS = 60


class CsvRefused(GatewayError):
    """The whole file is refused (its header, its encoding); `code` says why, for machines."""

    status, reason, title = 422, "file-refused", "File refused"

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


def read_csv(
    stream: IO[bytes], *, file_name: str, sha256: str, feed: CsvFeed
) -> Iterator[FileDocument | FileProblem]:
    """Yield a document or a problem per data row of `stream`, in file order.

    Raises `CsvRefused` before the first row for a bad header, and at the row where the text
    stops being UTF-8 or CSV (what was yielded before is then to be thrown away by the caller:
    a file is accepted whole or refused whole).
    """
    quantities = CSV_DOCUMENTS.get(feed.document_type)
    if quantities is None:
        raise CsvRefused("unsupported_document", f"no CSV mapping for {feed.document_type!r}")
    target = DOCUMENT_TYPES[feed.document_type]
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    reader = csv.reader(text, delimiter=feed.delimiter, strict=True)
    try:
        header = _header(next(reader, None), feed)
        for row in reader:
            if not row or row == [""]:
                continue  # a blank line (a trailing newline, an editor's last line)
            line = reader.line_num
            where = Provenance(file=file_name, sha256=sha256, line=line)
            if len(row) != len(header):
                yield _problem(where, "bad_row", f"expected {len(header)} fields, found {len(row)}")
                continue
            yield _row(row, header, feed, quantities, target, where)
    except UnicodeDecodeError as exc:
        raise CsvRefused(
            "not_utf8", f"line {reader.line_num + 1}: not UTF-8 ({exc.reason})"
        ) from None
    except csv.Error as exc:
        raise CsvRefused("not_csv", f"line {reader.line_num}: {exc}") from None
    finally:
        text.detach()  # the caller owns the stream


def _header(row: list[str] | None, feed: CsvFeed) -> list[str | None]:
    """The canonical field of each column (None: ignored), or `CsvRefused`."""
    if not row:
        raise CsvRefused("missing_header", "the file is empty: no header line")
    names = [name.strip() for name in row]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise CsvRefused("bad_header", f"columns repeated in the header: {', '.join(repeated)}")
    missing = [name for name in feed.columns if name not in names]
    unknown = [name for name in names if name not in feed.columns and name not in feed.ignored]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing columns: {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown columns: {', '.join(unknown)}")
        raise CsvRefused("bad_header", "; ".join(parts))
    return [feed.columns.get(name) for name in names]


def _row(
    row: list[str],
    header: list[str | None],
    feed: CsvFeed,
    quantities: tuple[str, ...],
    target: type[Any],
    where: Provenance,
) -> FileDocument | FileProblem:
    values: dict[str, Any] = dict(feed.constants)
    for field, raw in zip(header, row, strict=True):
        value = raw.strip()
        if field is not None and value:
            values[field] = value
    try:
        _convert_quantities(values, quantities, feed)
    except _RowError as exc:
        return _problem(where, exc.reason, exc.detail)
    try:
        document = msgspec.convert(values, target, strict=False)
    except msgspec.ValidationError as exc:
        message, _, path = str(exc).rpartition(" - at ")
        path = path.strip("`") if message else "$"
        return _problem(
            where,
            "invalid_row",
            f"{path.removeprefix('$.') or 'row'}: {message or exc}",
            errors=(FieldError(path, message or str(exc)),),
        )
    return FileDocument(document=document, provenance=where)


class _RowError(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _convert_quantities(values: dict[str, Any], quantities: tuple[str, ...], feed: CsvFeed) -> None:
    """Map the supplier's SKU to ours and its packs to stocking units, in place."""
    factor = Decimal(1)
    if feed.items:
        supplier_sku = values.get("sku")
        item = feed.items.get(supplier_sku) if isinstance(supplier_sku, str) else None
        if item is None:
            raise _RowError(
                "unknown_item", f"sku {_quoted(supplier_sku)} is not in the cross-reference"
            )
        unit = values.get("uom")
        if unit == item.stocking_uom:
            pass
        elif unit is None or unit == item.pack_uom:
            factor = item.units_per_pack
        else:
            expected = " or ".join(u for u in (item.pack_uom, item.stocking_uom) if u)
            raise _RowError(
                "unknown_unit", f"uom {_quoted(unit)} for sku {supplier_sku!r}: expected {expected}"
            )
        values["sku"] = item.sku
        values["uom"] = item.stocking_uom
    for field in quantities:
        raw = values.get(field)
        if raw is None:
            continue
        try:
            amount = Decimal(raw)
        except InvalidOperation:
            raise _RowError("invalid_row", f"{field}: not a number: {_quoted(raw)}") from None
        if not amount.is_finite():
            raise _RowError("invalid_row", f"{field}: not a number: {_quoted(raw)}")
        values[field] = amount * factor
    if "available" in quantities and "available" not in values and "on_hand" in values:
        values["available"] = (
            values["on_hand"]
            - values.get("allocated", Decimal(0))
            - values.get("quarantined", Decimal(0))
        )


def _problem(
    where: Provenance, reason: str, detail: str, *, errors: tuple[FieldError, ...] = ()
) -> FileProblem:
    return FileProblem(
        provenance=where,
        reason=reason,
        detail=f"{where.file} line {where.line}: {detail}",
        errors=errors,
    )


def _quoted(value: object) -> str:
    text = repr(value)
    return text if len(text) <= QUOTED_VALUE_CHARS else text[: QUOTED_VALUE_CHARS - 3] + "..."
