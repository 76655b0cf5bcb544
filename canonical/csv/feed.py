"""What a partner's CSV feed means: its columns, item cross-reference and pack sizes.

A `CsvFeed` is data, not code: the gateway's config builds one per partner file rule
(gateway/config/files.py), and `canonical.csv.read_csv` applies it row by row. Only flat
documents fit a row; `CSV_DOCUMENTS` names them with the fields that hold quantities (the
ones a pack conversion multiplies).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import MappingProxyType

import msgspec
from msgspec import Struct

from canonical.common import InvalidField, Sku, UomCode, check_decimal

__all__ = [
    "CROSS_REFERENCE_COLUMNS",
    "CSV_DOCUMENTS",
    "CrossReferenceError",
    "CsvFeed",
    "ItemCrossReference",
    "cross_reference",
    "load_cross_reference",
]

# Flat documents a CSV row can become, each with its quantity fields, in the order they are
# converted. `available` is derived when the feed does not map it (on hand - allocated -
# quarantined), after conversion, so a supplier's pack counts never reach it unconverted.
CSV_DOCUMENTS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "inventory_position": ("on_hand", "allocated", "in_transit", "quarantined", "available"),
        "inventory_delta": ("on_hand", "allocated", "in_transit", "quarantined", "available"),
    }
)
# The columns a cross-reference file must have; `pack_uom` may be left empty.
CROSS_REFERENCE_COLUMNS = ("supplier_sku", "sku", "stocking_uom", "units_per_pack", "pack_uom")
# Entries one cross-reference may hold: a file is read whole into memory, so it is bounded.
MAX_CROSS_REFERENCE_ITEMS = 200_000


class CrossReferenceError(ValueError):
    """A cross-reference file that cannot be read; the message names the file and line."""


class ItemCrossReference(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One supplier item as we stock it: our SKU, and how many stocking units its pack holds.

    A pack is per item (a case of 24 x 12 oz is not a unit category): a row in `pack_uom` (or
    with no unit at all) is multiplied by `units_per_pack`; a row already in `stocking_uom`
    is taken as it is.
    """

    supplier_sku: Sku
    sku: Sku
    stocking_uom: UomCode
    units_per_pack: Decimal = Decimal(1)
    pack_uom: UomCode | None = None

    def __post_init__(self) -> None:
        # msgspec has no numeric bounds for Decimal (canonical/common.py).
        check_decimal("units_per_pack", self.units_per_pack)
        if not self.units_per_pack:
            raise InvalidField("units_per_pack", "must be > 0")


class CsvFeed(Struct, frozen=True, kw_only=True):
    """How one partner's CSV file maps to canonical documents of one type.

    `columns` maps a header (as written, trimmed) to a canonical field; `constants` fill fields
    no column carries (the location of a single-site feed); `ignored` are headers the partner
    sends that mean nothing to us. Any other header refuses the file: a renamed column must not
    silently drop a field. `items`, when not empty, is the cross-reference every row's SKU must
    be found in (supplier SKU -> ours, with its pack).
    """

    document_type: str
    columns: Mapping[str, str]
    constants: Mapping[str, str] = MappingProxyType({})
    ignored: frozenset[str] = frozenset()
    delimiter: str = ","
    items: Mapping[str, ItemCrossReference] = MappingProxyType({})


def load_cross_reference(path: Path) -> dict[str, ItemCrossReference]:
    """Read a cross-reference CSV (`CROSS_REFERENCE_COLUMNS` as its header) into a table.

    Raises `CrossReferenceError` naming the file and line of the first problem.
    """
    table: dict[str, ItemCrossReference] = {}
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = [name.strip() for name in next(reader, [])]
            missing = [name for name in CROSS_REFERENCE_COLUMNS[:4] if name not in header]
            if missing:
                raise CrossReferenceError(f"{path}:1: missing columns {', '.join(missing)}")
            for row in reader:
                if not row:
                    continue
                if len(table) >= MAX_CROSS_REFERENCE_ITEMS:
                    raise CrossReferenceError(
                        f"{path}: more than {MAX_CROSS_REFERENCE_ITEMS} items"
                    )
                values = {
                    name: value.strip()
                    for name, value in zip(header, row, strict=False)
                    if name in CROSS_REFERENCE_COLUMNS and value.strip()
                }
                try:
                    entry = msgspec.convert(values, ItemCrossReference, strict=False)
                except (msgspec.ValidationError, InvalidOperation) as exc:
                    raise CrossReferenceError(f"{path}:{reader.line_num}: {exc}") from None
                if entry.supplier_sku in table:
                    raise CrossReferenceError(
                        f"{path}:{reader.line_num}: supplier_sku {entry.supplier_sku!r} repeated"
                    )
                table[entry.supplier_sku] = entry
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CrossReferenceError(f"{path}: {exc}") from None
    return table


def cross_reference(entries: Iterable[ItemCrossReference]) -> dict[str, ItemCrossReference]:
    """Key `entries` by supplier SKU; raises `CrossReferenceError` for a repeated one."""
    table: dict[str, ItemCrossReference] = {}
    for entry in entries:
        if entry.supplier_sku in table:
            raise CrossReferenceError(f"supplier_sku {entry.supplier_sku!r} repeated")
        table[entry.supplier_sku] = entry
    return table
