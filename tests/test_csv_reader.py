"""`canonical.csv.read_csv`: a partner's CSV feed row by row into canonical documents."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import pytest

from canonical import InventoryDelta, InventoryPosition
from canonical.csv import (
    CrossReferenceError,
    CsvFeed,
    CsvRefused,
    ItemCrossReference,
    cross_reference,
    load_cross_reference,
    read_csv,
)
from canonical.files import FileDocument, FileProblem

COLUMNS = {"sku": "sku", "loc": "location_id", "qty": "on_hand", "uom": "uom", "at": "as_of"}
FEED = CsvFeed(document_type="inventory_position", columns=COLUMNS)
AT = "2026-12-01T08:00:00+01:00"


def read(text: str | bytes, feed: CsvFeed = FEED) -> list[FileDocument | FileProblem]:
    data = text.encode() if isinstance(text, str) else text
    return list(read_csv(io.BytesIO(data), file_name="f.csv", sha256="00", feed=feed))


def positions(items: list[FileDocument | FileProblem]) -> list[InventoryPosition]:
    return [
        i.document
        for i in items
        if isinstance(i, FileDocument) and isinstance(i.document, InventoryPosition)
    ]


def test_a_row_becomes_a_document_with_its_line_and_available_derived() -> None:
    items = read(f"sku,loc,qty,uom,at\r\nA-1,DC1,7,EA,{AT}\r\n\r\nA-2,DC1,3.5,KG,{AT}\r\n")

    assert [(p.sku, p.on_hand, p.available, p.uom) for p in positions(items)] == [
        ("A-1", Decimal(7), Decimal(7), "EA"),
        ("A-2", Decimal("3.5"), Decimal("3.5"), "KG"),
    ]
    assert [i.provenance.line for i in items] == [2, 4]  # the blank line 3 is skipped


def test_constants_fill_fields_no_column_carries_and_a_delimiter_is_the_partners() -> None:
    feed = CsvFeed(
        document_type="inventory_position",
        columns={"sku": "sku", "qty": "on_hand", "at": "as_of"},
        constants={"location_id": "DC9", "uom": "EA"},
        delimiter=";",
    )

    [position] = positions(read(f"sku;qty;at\nA-1;2;{AT}\n", feed))

    assert (position.location_id, position.uom) == ("DC9", "EA")


@pytest.mark.parametrize(
    ("unit", "expected"),
    [("CS", Decimal(24)), ("", Decimal(24)), ("EA", Decimal(2))],
)
def test_packs_convert_to_the_stocking_unit_and_the_sku_to_ours(
    unit: str, expected: Decimal
) -> None:
    items = {
        "S-1": ItemCrossReference(
            supplier_sku="S-1",
            sku="OUR-1",
            stocking_uom="EA",
            units_per_pack=Decimal(12),
            pack_uom="CS",
        )
    }
    feed = CsvFeed(document_type="inventory_position", columns=COLUMNS, items=items)

    [position] = positions(read(f"sku,loc,qty,uom,at\nS-1,DC1,2,{unit},{AT}\n", feed))

    assert (position.sku, position.on_hand, position.uom) == ("OUR-1", expected, "EA")


@pytest.mark.parametrize(
    ("row", "reason", "detail"),
    [
        (f"S-9,DC1,1,EA,{AT}", "unknown_item", "'S-9' is not in the cross-reference"),
        (f"S-1,DC1,1,PL,{AT}", "unknown_unit", "expected CS or EA"),
        (f"S-1,DC1,-1,EA,{AT}", "invalid_row", "on_hand"),
        (f"S-1,DC1,NaN,EA,{AT}", "invalid_row", "not a number"),
        ("S-1,DC1,1,EA,2026-12-01T08:00:00", "invalid_row", "as_of"),  # no offset
        ("S-1,DC1,1,EA", "bad_row", "expected 5 fields, found 4"),
    ],
)
def test_a_bad_row_is_a_problem_naming_line_and_reason_and_the_next_row_still_goes(
    row: str, reason: str, detail: str
) -> None:
    items = cross_reference(
        [
            ItemCrossReference(
                supplier_sku="S-1",
                sku="OUR-1",
                stocking_uom="EA",
                units_per_pack=Decimal(12),
                pack_uom="CS",
            )
        ]
    )
    feed = CsvFeed(document_type="inventory_position", columns=COLUMNS, items=items)

    problem, good = read(f"sku,loc,qty,uom,at\n{row}\nS-1,DC1,1,EA,{AT}\n", feed)

    assert isinstance(problem, FileProblem)
    assert (problem.reason, problem.provenance.line) == (reason, 2)
    assert problem.detail.startswith("f.csv line 2: ")
    assert detail in problem.detail
    assert isinstance(good, FileDocument)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "missing_header"),
        (b"sku,loc,qty,at\n", "bad_header"),  # uom missing
        (b"sku,loc,qty,uom,at,extra\n", "bad_header"),  # a column nobody mapped
        (b"sku,sku,loc,qty,uom,at\n", "bad_header"),  # repeated
        (b"sku,loc,qty,uom,at\nA-1,DC1,1,EA,\xff\xfe\n", "not_utf8"),
        (b'sku,loc,qty,uom,at\n"A-1,DC1\n', "not_csv"),
    ],
)
def test_a_file_is_refused_whole_for_its_header_encoding_or_quoting(data: bytes, code: str) -> None:
    with pytest.raises(CsvRefused) as refused:
        read(data)

    assert refused.value.code == code


def test_ignored_columns_are_allowed_and_read_nowhere() -> None:
    feed = CsvFeed(document_type="inventory_position", columns=COLUMNS, ignored=frozenset({"note"}))

    [position] = positions(read(f"sku,loc,note,qty,uom,at\nA-1,DC1,hello,1,EA,{AT}\n", feed))

    assert position.sku == "A-1"


def test_an_inventory_delta_feed_maps_too() -> None:
    feed = CsvFeed(
        document_type="inventory_delta",
        columns={
            "id": "delta_id",
            "seq": "sequence",
            "sku": "sku",
            "loc": "location_id",
            "at": "occurred_at",
            "why": "reason",
            "qty": "on_hand",
        },
        constants={"uom": "EA"},
    )

    [item] = read(f"id,seq,sku,loc,at,why,qty\nd-1,4,A-1,DC1,{AT},receipt,5\n", feed)

    assert isinstance(item, FileDocument)
    assert isinstance(item.document, InventoryDelta)
    assert (item.document.sequence, item.document.available) == (4, Decimal(5))


def test_a_cross_reference_file_loads_and_names_the_line_of_a_bad_entry(tmp_path: Path) -> None:
    good = tmp_path / "items.csv"
    good.write_text(
        "\ufeffsupplier_sku,sku,stocking_uom,units_per_pack,pack_uom\nS-1,OUR-1,EA,12,CS\n"
        "S-2,OUR-2,EA,1,\n",
        encoding="utf-8",
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("supplier_sku,sku,stocking_uom,units_per_pack\nS-1,OUR-1,EA,0\n")

    table = load_cross_reference(good)

    assert table["S-1"].units_per_pack == 12
    assert table["S-2"].pack_uom is None
    with pytest.raises(CrossReferenceError, match=r"bad\.csv:2: .*units_per_pack"):
        load_cross_reference(bad)
