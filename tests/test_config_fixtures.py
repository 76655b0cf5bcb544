"""`gateway config test DIR`: sample inputs through the gateway's decoders, diffed on failure."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from gatewaykit import Partner, write_config

from gateway.cli import main

ROOT = Path(__file__).parent.parent
DEMO = ROOT / "gateway" / "examples" / "demo.toml"
DEMO_FIXTURES = ROOT / "gateway" / "examples" / "fixtures"
SAMPLES = Path(__file__).parent / "x12_samples"
FILES = """
[partners.x12]
sender_id = "DISTCO"
receiver_id = "ACMESUPPLY"

[partners.files]
folder = "/srv/acme"

[[partners.files.rules]]
pattern = "stock_*.csv"
document_type = "inventory_position"

[partners.files.rules.csv]
columns = { "Item" = "sku", "Warehouse" = "location_id", "Qty" = "on_hand", "Date" = "as_of" }
constants = { "uom" = "EA" }

[[partners.files.rules]]
pattern = "*.x12"
document_type = "purchase_order_ack"
format = "x12"
"""
DOCUMENTS = '["purchase_order_ack", "advance_ship_notice", "invoice", "inventory_position"]'


def fixture(folder: Path, input_name: str, data: bytes, expected: object, **spec: str) -> Path:
    folder.mkdir(parents=True)
    (folder / input_name).write_bytes(data)
    lines = ['partner = "acme"', f'input = "{input_name}"'] + [
        f'{key} = "{value}"' for key, value in spec.items()
    ]
    (folder / "fixture.toml").write_text("\n".join(lines) + "\n")
    (folder / "expected.json").write_text(json.dumps(expected))
    return folder


def run(capsys: pytest.CaptureFixture[str], fixtures: Path, config: Path) -> tuple[int, str]:
    code = main(["config", "test", str(fixtures), "--config", str(config)], {})
    return code, capsys.readouterr().out


@pytest.fixture
def config(tmp_path: Path) -> Path:
    folder = tmp_path / "config"
    folder.mkdir()
    return write_config(
        folder, "amqp://localhost/", [Partner("acme")], partner_extra=FILES, documents=DOCUMENTS
    )


def test_the_demo_fixtures_pass_with_the_demo_config(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, DEMO_FIXTURES, DEMO)

    assert code == 0
    assert "FAIL" not in out
    assert out.count("ok ") == len(list(DEMO_FIXTURES.glob("*/fixture.toml")))


def test_a_fixture_whose_output_differs_fails_with_a_diff(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fixtures = tmp_path / "fixtures"
    shutil.copytree(DEMO_FIXTURES / "acme-purchase-order-ack", fixtures / "ack")
    expected = fixtures / "ack" / "expected.json"
    expected.write_text(expected.read_text().replace('"SKU-00004"', '"SKU-99999"'))

    code, out = run(capsys, fixtures, DEMO)

    assert code == 1
    assert "FAIL ack" in out
    assert '-          "sku": "SKU-99999"' in out
    assert '+          "sku": "SKU-00004"' in out


def test_a_webhook_body_that_is_invalid_is_a_problem_naming_the_field(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = DEMO_FIXTURES / "acme-purchase-order-ack" / "input.json"
    document = json.loads(body.read_text())
    del document["po_number"]
    fixture(
        tmp_path / "fixtures" / "bad",
        "body.json",
        json.dumps(document).encode(),
        {"documents": [], "problems": [{"reason": "invalid-document"}]},
        document_type="purchase_order_ack",
    )

    code, out = run(capsys, tmp_path / "fixtures", config)

    assert code == 1  # the expected problem lacks the detail: the diff shows what came out
    assert '"reason": "invalid-document"' in out
    assert "$.po_number" in out


def test_a_document_type_the_partner_may_not_send_is_refused_as_the_ingress_would(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = (DEMO_FIXTURES / "acme-purchase-order-ack" / "input.json").read_bytes()
    expected = {
        "documents": [],
        "problems": [
            {"reason": "document-not-allowed", "detail": "'acme' may not send 'goods_receipt'"}
        ],
    }
    fixture(tmp_path / "f" / "gr", "body.json", body, expected, document_type="goods_receipt")

    code, out = run(capsys, tmp_path / "f", config)

    assert (code, out.strip()) == (0, "ok   gr")


def test_a_csv_file_becomes_the_documents_with_their_lines(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = b"Item,Warehouse,Qty,Date\nSKU-1,DC1,5,2026-12-01T08:00:00Z\nSKU-2,DC1,x,2026-12-01\n"
    fixture(tmp_path / "f" / "stock", "stock_1.csv", csv, {"documents": []})

    code, out = run(capsys, tmp_path / "f", config)

    # The expected side said no documents: the diff lists the one the first row became.
    assert code == 1
    assert '"sku": "SKU-1"' in out
    assert '"line": 2' in out
    assert "SKU-2" not in out.split("problems")[0]


def test_an_x12_file_gives_its_documents_and_the_997_it_owes(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = (SAMPLES / "855_856_810.x12").read_bytes()
    fixture(tmp_path / "f" / "x12", "in.x12", data, {"problems": [], "acknowledgements": []})

    code, out = run(capsys, tmp_path / "f", config)

    assert code == 1
    assert "AK1*PR*200" in out  # the 997 answering group 200, dated by the fixture
    assert "*260101*0000*" in out


STOCK = b"Item,Warehouse,Qty,Date\nSKU-1,DC1,5,2026-12-01T08:00:00Z\nSKU-2,DC1,x,2026-12-01\n"


def test_a_csv_fixture_written_by_hand_passes(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    position = {
        "document_type": "inventory_position",
        "sku": "SKU-1",
        "location_id": "DC1",
        "on_hand": "5",
        "allocated": "0",
        "in_transit": "0",
        "quarantined": "0",
        "available": "5",
        "uom": "EA",
        "as_of": "2026-12-01T08:00:00Z",
    }
    expected = {
        "documents": [{"document": position, "provenance": {"file": "stock_1.csv", "line": 2}}],
        "problems": [
            {
                "reason": "invalid_row",
                "detail": "stock_1.csv line 3: on_hand: not a number: 'x'",
                "errors": [],
                "provenance": {"file": "stock_1.csv", "line": 3},
            }
        ],
    }
    fixture(tmp_path / "f" / "stock", "stock_1.csv", STOCK, expected)

    code, out = run(capsys, tmp_path / "f", config)

    assert (code, out.strip()) == (0, "ok   stock")


def test_update_writes_the_expected_file_which_then_passes(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = fixture(
        tmp_path / "f" / "x12", "in.x12", (SAMPLES / "855_856_810.x12").read_bytes(), {}
    )
    argv = ["config", "test", str(tmp_path / "f"), "--config", str(config)]

    updated = main([*argv, "--update"], {})
    capsys.readouterr()
    again = main(argv, {})

    written = json.loads((folder / "expected.json").read_text())
    assert (updated, again) == (0, 0)
    assert [d["document"]["document_type"] for d in written["documents"]] == [
        "purchase_order_ack",
        "advance_ship_notice",
        "invoice",
    ]
    assert "AK9*A*1*1*1~" in written["acknowledgements"][0]
