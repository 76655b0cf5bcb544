"""`gateway edi inspect FILE`, run as the command an operator types: JSON out, never a traceback.

Exit 0 when every set is accepted, 1 otherwise (a file that is not X12 included), 2 when the
file or the config cannot be read.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from x12_text import group, interchange, po_set

REPO = Path(__file__).resolve().parent.parent
SAMPLES = Path(__file__).resolve().parent / "x12_samples"


def inspect(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "edi", "inspect", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=cwd or REPO,
        check=False,
    )


def report(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert "Traceback" not in done.stderr
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


def documents(found: dict[str, Any]) -> list[str]:
    return [
        document["document_type"]
        for interchange in found["interchanges"]
        for group in interchange["groups"]
        for one in group["sets"]
        for document in one.get("documents", [])
    ]


def test_a_good_file_prints_its_documents_and_exits_0() -> None:
    done = inspect(SAMPLES / "855_856_810.x12")
    assert done.returncode == 0
    found = report(done)
    assert (found["accepted"], found["errors"]) == (True, [])
    assert documents(found) == ["purchase_order_ack", "advance_ship_notice", "invoice"]


def test_a_file_with_a_bad_set_names_segment_and_element_and_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "bad.x12"
    bad = po_set("0002", order_date="20261345")
    path.write_text(interchange([group([po_set("0001"), bad])]), encoding="latin-1")
    done = inspect(path)
    assert done.returncode == 1
    found = report(done)
    assert documents(found) == ["purchase_order"]
    (error,) = found["errors"]
    assert (error["segment"], error["element"], error["transaction_set"]) == (13, 5, "0002")


@pytest.mark.parametrize(
    "content",
    [b"", b"\x00\xff garbage \x89PNG", b"ISA*00*short~", b"hello, world\n" * 50],
    ids=["empty", "binary", "short ISA", "text"],
)
def test_a_file_that_is_not_x12_prints_an_error_as_json_and_exits_1(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "junk.x12"
    path.write_bytes(content)
    done = inspect(path)
    assert done.returncode == 1
    found = report(done)
    assert found["accepted"] is False
    assert found["refused"]
    assert found["errors"][0]["segment"] == 1


def test_a_missing_file_is_a_clear_message_and_exit_2(tmp_path: Path) -> None:
    done = inspect(tmp_path / "nowhere.x12")
    assert (done.returncode, done.stdout) == (2, "")
    assert "cannot read" in done.stderr
    assert "nowhere.x12" in done.stderr
    assert "Traceback" not in done.stderr


def test_ack_prints_the_acknowledgements_it_would_send() -> None:
    done = inspect(SAMPLES / "850.x12", "--ack")
    found = report(done)
    (ack,) = found["acknowledgements"]
    assert "ST*997*0001~" in ack
    assert "AK9*A*1*1*1~" in ack


def test_a_partner_from_a_config_without_an_x12_profile_reads_with_the_default(
    tmp_path: Path,
) -> None:
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode("ascii")
    config = tmp_path / "gw.toml"
    config.write_text(
        '[amqp]\nurl = "amqp://gw:pw@127.0.0.1:5672/"\n'
        f'[[partners]]\nid = "acme"\nname = "Acme"\nsecrets = ["{secret}"]\n'
        'sends = ["inventory_position"]\n',
        encoding="utf-8",
    )
    done = inspect(SAMPLES / "846.x12", "--config", config, "--partner", "acme")
    assert done.returncode == 0
    found = report(done)
    assert (found["partner"], documents(found)) == ("acme", ["inventory_position"])
    unknown = inspect(SAMPLES / "846.x12", "--config", config, "--partner", "globex")
    assert unknown.returncode == 2
    assert "no partner 'globex'" in unknown.stderr
