"""`[partners.x12]` and `[partners.edi]`: a partner's X12 profile and settings as configured,
and what `config check` says of them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from gatewaykit import Partner, write_config

from canonical.x12 import X12Profile
from gateway.config import check_config, load_config

ACME = Partner("acme")
REPO = Path(__file__).resolve().parents[1]

FILES = """
[partners.files]
folder = "/srv/acme"

[[partners.files.rules]]
pattern = "*.x12"
document_type = "purchase_order_ack"
format = "x12"
"""
PROFILE = """
[partners.x12]
sender_id = "DISTCO"
receiver_id = "ACMESUPPLY"
acknowledgement = "999"
uom_map = { "CA" = "CS" }
"""


def check(tmp_path: Path, extra: str) -> tuple[int, list[str]]:
    path = write_config(tmp_path, "amqp://localhost/", [ACME], partner_extra=extra)
    return check_config(path, {})


def test_a_partners_profile_and_settings_load(tmp_path: Path) -> None:
    extra = (
        'receives = ["purchase_order"]\n'
        + FILES
        + PROFILE
        + '[partners.edi]\nsend_as_x12 = ["purchase_order"]\nreplay_window_s = 3600\n'
    )
    config = load_config(write_config(tmp_path, "amqp://x/", [ACME], partner_extra=extra), {})

    (partner,) = config.partners
    assert partner.x12 == X12Profile(
        sender_id="DISTCO", receiver_id="ACMESUPPLY", acknowledgement="999", uom_map={"CA": "CS"}
    )
    assert partner.edi.send_as_x12 == {"purchase_order"}
    assert partner.edi.replay_window_s == 3600


def test_a_partner_without_x12_tables_reads_with_the_default_profile(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, "amqp://x/", [ACME], partner_extra=FILES), {})

    (partner,) = config.partners
    assert partner.x12 is None
    assert partner.edi.send_as_x12 == frozenset()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            'receives = ["exception"]\n' + FILES + '[partners.edi]\nsend_as_x12 = ["exception"]\n',
            "no X12 transaction set carries a 'exception'",
        ),
        (
            'receives = ["purchase_order"]\n[partners.edi]\nsend_as_x12 = ["purchase_order"]\n',
            "X12 files go out through a file channel",
        ),
        (
            FILES + '[partners.edi]\nsend_as_x12 = ["purchase_order"]\n',
            "'purchase_order' is not in receives",
        ),
        (
            FILES + '[partners.x12]\nsender_id = "SAME"\nreceiver_id = "SAME"\n',
            "the partner's interchange id is the gateway's own",
        ),
        (FILES + '[partners.x12]\nversion = "4010"\n', "version"),
        (FILES + '[partners.x12]\nacknowledgment = "997"\n', "acknowledgment"),
    ],
)
def test_config_check_names_what_is_wrong_with_a_partners_x12(
    tmp_path: Path, extra: str, message: str
) -> None:
    code, lines = check(tmp_path, extra)

    assert code == 1
    assert any(message in line for line in lines), lines


def test_edi_inspect_reads_with_the_partners_configured_profile(tmp_path: Path) -> None:
    """`--partner` reads with `[partners.x12]`: here it checks the interchange ids."""
    extra = FILES + PROFILE + "check_interchange_ids = true\n"
    config = write_config(tmp_path, "amqp://x/", [ACME], partner_extra=extra)
    sample = Path(__file__).parent / "x12_samples" / "846.x12"  # from ACMESUPPLY to DISTCO
    stranger = tmp_path / "stranger.x12"
    stranger.write_bytes(sample.read_bytes().replace(b"ACMESUPPLY", b"SOMEONEELS"))

    def inspect(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                *(sys.executable, "-m", "gateway.cli", "edi", "inspect", str(path)),
                *("--config", str(config), "--partner", "acme"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            check=False,
        )

    ours, theirs = inspect(sample), inspect(stranger)

    assert ours.returncode == 0, ours.stdout + ours.stderr
    assert theirs.returncode == 1
    assert '"code": "006"' in theirs.stdout
