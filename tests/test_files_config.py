"""`[partners.files]`: a partner's file channel as configured, and what `config check` says."""

from __future__ import annotations

from pathlib import Path

import pytest
from gatewaykit import Partner, write_config

from canonical.csv import CsvFeed
from gateway.config import check_config, load_config

ACME = Partner("acme")


def channel(rule_extra: str, *, csv: str = 'columns = { "Item" = "sku" }') -> str:
    return f"""
[partners.files]
folder = "/srv/acme"

[[partners.files.rules]]
pattern = "stock_*.csv"
document_type = "inventory_position"
{rule_extra}
[partners.files.rules.csv]
{csv}
"""


def check(tmp_path: Path, extra: str) -> tuple[int, list[str]]:
    path = write_config(tmp_path, "amqp://localhost/", [ACME], partner_extra=extra)
    return check_config(path, {})


def test_a_channel_builds_the_csv_feed_with_its_cross_reference_file(tmp_path: Path) -> None:
    items = tmp_path / "items.csv"
    items.write_text("supplier_sku,sku,stocking_uom,units_per_pack\nS-1,SKU-1,EA,12\n")
    extra = channel("", csv=f'columns = {{ "Item" = "sku" }}\nitems_file = "{items}"')
    config = load_config(write_config(tmp_path, "amqp://x/", [ACME], partner_extra=extra), {})

    [partner] = config.partners
    assert partner.files is not None
    feed = partner.files.rules[0].csv_feed()
    assert isinstance(feed, CsvFeed)
    assert feed.items["S-1"].sku == "SKU-1"
    assert partner.files.settle_s == 2.0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (channel("", csv='columns = { "Item" = "colour" }'), "has no field 'colour'"),
        (channel('format = "csv"', csv="columns = {}"), "map at least one column"),
        (
            channel("").replace("inventory_position", "purchase_order"),
            "CSV maps only flat documents",
        ),
        (channel("").replace("inventory_position", "stock"), "unknown document type 'stock'"),
        (
            channel("", csv='columns = { "A" = "sku" }\nitems_file = "/nonexistent.csv"'),
            "items_file",
        ),
        (
            channel("").replace('folder = "/srv/acme"', 'folder = "/srv/acme"\nsettle_s = 0.5'),
            "settle_s",
        ),
    ],
)
def test_config_check_names_what_is_wrong_with_a_file_rule(
    tmp_path: Path, extra: str, message: str
) -> None:
    status, lines = check(tmp_path, extra)

    assert status == 1
    assert any(message in line for line in lines), lines
