"""`gateway config lint FILE`: every problem at once, each with file, line, column and field."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.cli import main

SECRET = "whsec_xoKtMg3wnFyc6aKDMCtlIyf9x8JMoPQXLA2MJqbOYjk="
DEMO = Path(__file__).parent.parent / "gateway" / "examples" / "demo.toml"

GOOD = """\
[store]
path = "gateway.db"

[amqp]
url = { env = "GW_AMQP_URL" }

[[partners]]
id = "acme"
name = "Acme"
secrets = [{ file = "acme.secret" }]
sends = ["purchase_order_ack"]
"""


def run_lint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, *args: str, **environ: str
) -> tuple[int, list[str]]:
    """Lint `text` as tmp_path/gateway.toml (acme's secret in a 0600 file); (exit, stdout lines)."""
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    secret = tmp_path / "acme.secret"
    if not secret.exists():
        secret.write_text(SECRET + "\n")
        secret.chmod(0o600)
    env = {"GW_AMQP_URL": "amqp://guest:guest@127.0.0.1/", **environ}
    code = main(["config", "lint", str(path), *args], env)
    return code, capsys.readouterr().out.splitlines()


def test_a_clean_file_exits_0_with_nothing_to_say(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = run_lint(tmp_path, capsys, GOOD)

    assert code == 0
    assert lines == []


def test_every_error_is_reported_at_once_with_line_column_partner_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = GOOD.replace('path = "gateway.db"', 'path = "gateway.db"\n  colour = "blue"') + (
        '\n[[partners]]\nid = "globex"\nname = "Globex"\nsecrets = ["' + SECRET + '"]\n'
        'sends = ["purchase_order_ack"]\nrate_limit = { per_second = "fast" }\n'
    )
    code, lines = run_lint(tmp_path, capsys, text)

    where = str(tmp_path / "gateway.toml")
    errors = [line for line in lines if "warning:" not in line]
    assert code == 1
    assert errors[0] == f"{where}:3:3: [store]: colour: unknown key"
    assert errors[1] == (
        f"{where}:17:1: partner 'globex': secrets[0]: same secret as secrets[0] of partner 'acme'"
    )
    assert errors[2] == (
        f"{where}:19:1: partner 'globex': rate_limit.per_second: Expected `float`, got `str`"
    )
    assert len(errors) == 3


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ('[admin]\nhost = "0.0.0.0"\n', "[admin]: token:"),
        (
            '[partners.sftp.server]\nhost = "sftp.example.com"\nusername = "gw"\n'
            'password = { env = "SFTP_PASSWORD" }\n',
            "partner 'acme': sftp.server.host_key: missing required field",
        ),
    ],
    ids=["public-admin-without-token", "sftp-without-pinned-host-key"],
)
def test_unsafe_settings_are_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: str, expected: str
) -> None:
    code, lines = run_lint(tmp_path, capsys, GOOD + extra, SFTP_PASSWORD="s3cret-password")

    assert code == 1
    assert any(expected in line for line in lines), lines


def test_an_inline_secret_is_a_warning_that_does_not_fail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = run_lint(
        tmp_path, capsys, GOOD.replace('{ file = "acme.secret" }', f'"{SECRET}"')
    )

    assert code == 0
    assert lines == [
        f"{tmp_path / 'gateway.toml'}:10:1: warning: partners[0].secrets[0]: secret written "
        'inline: use { env = "NAME" } or { file = "PATH" }'
    ]


PULL_SECRET = "whsec_OLUt2Ntk4UQJKFojRyYdZhQYsDLCBb1R8FcIpz2J2w0="


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            '[partners.pull]\ntoken = { env = "PULL_TOKEN" }\n',
            ":13:1: warning: partners[0].pull: dead: receives is empty, nothing goes this way",
        ),
        (
            '[partners.x12]\nsender_id = "DISTCO"\nreceiver_id = "ACME"\n',
            ":13:1: warning: partners[0].x12: dead: no x12 file rule and no [partners.edi]"
            " send_as_x12 uses this profile",
        ),
    ],
    ids=["channel-with-nothing-to-carry", "x12-profile-nothing-uses"],
)
def test_a_dead_setting_is_a_warning_naming_where_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: str, expected: str
) -> None:
    code, lines = run_lint(tmp_path, capsys, GOOD + "\n" + extra, PULL_TOKEN=PULL_SECRET)

    assert code == 0
    assert lines == [f"{tmp_path / 'gateway.toml'}{expected}"]


def test_a_secret_file_others_can_read_is_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "acme.secret").write_text(SECRET)
    os.chmod(tmp_path / "acme.secret", 0o644)
    code, lines = run_lint(tmp_path, capsys, GOOD)

    assert code == 0
    assert len(lines) == 1
    assert "acme.secret is readable by others" in lines[0]


def test_a_missing_environment_variable_is_an_error_unless_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(GOOD)
    (tmp_path / "acme.secret").write_text(SECRET)
    (tmp_path / "acme.secret").chmod(0o600)

    strict = main(["config", "lint", str(path)], {})
    strict_out = capsys.readouterr().out
    lenient = main(["config", "lint", str(path), "--allow-missing-env"], {})
    lenient_out = capsys.readouterr().out

    assert strict == 1
    assert "GW_AMQP_URL is not set" in strict_out
    assert lenient == 0
    assert "warning:" in lenient_out
    assert "GW_AMQP_URL is not set" in lenient_out


def test_a_toml_syntax_error_names_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = run_lint(tmp_path, capsys, GOOD + "oops = \n")

    assert code == 1
    assert lines[0].startswith(f"{tmp_path / 'gateway.toml'}:12:")


def test_the_demo_config_passes_lint(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "lint", str(DEMO)], {}) == 0


def test_a_file_that_cannot_be_read_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["config", "lint", str(tmp_path / "missing.toml")], {})

    assert code == 2
    assert "cannot read" in capsys.readouterr().out
