"""The `gateway` command as an operator meets it: version, completion, one way to give the
config, exit codes that agree, and commands that read the store without the partners' secrets."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import anyio
import pytest
from store_samples import acceptance

from gateway.cli import main
from gateway.config import load_config
from gateway.store import Store

ROOT = Path(__file__).parent.parent
# Every secret by an env reference nobody set: operator commands must not care.
CONFIG = """\
[store]
path = "{store}"

[amqp]
url = {{ env = "UNSET_AMQP_URL" }}

[[partners]]
id = "acme"
name = "Acme"
secrets = [{{ env = "UNSET_ACME_SECRET" }}]
sends = ["purchase_order_ack"]
"""
SECRET = "whsec_xoKtMg3wnFyc6aKDMCtlIyf9x8JMoPQXLA2MJqbOYjk="


def gateway(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A config without any secret present, whose store holds one accepted message."""
    path = tmp_path / "gateway.toml"
    path.write_text(CONFIG.format(store=tmp_path / "gateway.db"))

    async def seed() -> None:
        async with Store(tmp_path / "gateway.db") as store:
            await store.accept(acceptance("one"))

    anyio.run(seed)
    return path


def test_version_prints_the_installed_version() -> None:
    done = gateway("--version")

    assert done.returncode == 0
    assert done.stdout.startswith("gateway ")


def test_bash_completion_completes_commands_and_their_actions(tmp_path: Path) -> None:
    script = tmp_path / "gateway.bash"
    script.write_text(gateway("completion", "bash").stdout)
    probe = (
        f"source {script}\n"
        "COMP_WORDS=(gateway dead-letters re); COMP_CWORD=2; _gateway_complete; "
        'echo "${COMPREPLY[*]}"\n'
        "COMP_WORDS=(gateway config l); COMP_CWORD=2; _gateway_complete; "
        'echo "${COMPREPLY[*]}"\n'
        "COMP_WORDS=(gateway backup --); COMP_CWORD=2; _gateway_complete; "
        'echo "${COMPREPLY[*]}"\n'
    )
    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=30)

    assert done.stdout.splitlines() == ["replay", "lint", "--help --config --out"]


@pytest.mark.parametrize(
    "argv",
    [["dead-letters", "list"], ["trace", "PO-404"], ["backup", "--out", "copy.db"]],
    ids=["dead-letters", "trace", "backup"],
)
def test_gateway_config_stands_in_for_the_option_and_no_secret_is_needed(
    config: Path, argv: list[str]
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=config.parent,
        env={**os.environ, "PYTHONPATH": str(ROOT), "GATEWAY_CONFIG": str(config)},
    )

    assert "UNSET_" not in done.stderr
    assert "Traceback" not in done.stderr
    # trace answers "no thread" (1): the store was read, not the secrets.
    assert done.returncode == (1 if argv[0] == "trace" else 0), done.stderr


def test_a_command_without_any_config_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["dead-letters", "list"], {})

    assert exit_.value.code == 2
    assert "GATEWAY_CONFIG" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["dead-letters", "show", "99"], 1),
        (["dead-letters", "replay", "99"], 1),
        (["dead-letters", "replay"], 2),
    ],
    ids=["show-missing", "replay-missing", "replay-without-filter"],
)
def test_exit_codes_agree_across_actions_and_need_no_secret(
    config: Path, capsys: pytest.CaptureFixture[str], argv: list[str], code: int
) -> None:
    assert main([*argv, "--config", str(config)], {}) == code
    err = capsys.readouterr().err
    assert "UNSET_" not in err
    if code == 1:
        assert "no dead letter 99" in err


def test_a_config_that_does_not_load_exits_2(config: Path) -> None:
    config.write_text(config.read_text() + "\n[http]\nport = 70000\n")

    done = gateway("dead-letters", "replay", "99", "--config", str(config))

    assert done.returncode == 2
    assert "[http]: port: Expected `int` <= 65535" in done.stderr


def test_run_still_takes_the_file_positionally(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[http]\nport = 70000\n")

    positional = gateway("run", str(broken))
    option = gateway("run", "--config", str(broken))

    assert positional.returncode == option.returncode == 2
    assert "<= 65535" in positional.stdout
    assert positional.stdout == option.stdout


def test_schema_out_to_a_path_that_cannot_be_a_folder_fails_without_a_traceback(
    tmp_path: Path,
) -> None:
    (tmp_path / "taken").write_text("a file")

    done = gateway("schema", "--out", str(tmp_path / "taken" / "schemas"))

    assert done.returncode == 1
    assert "cannot write schemas" in done.stderr
    assert "Traceback" not in done.stderr


def test_schema_out_creates_missing_folders(tmp_path: Path) -> None:
    done = gateway("schema", "--out", str(tmp_path / "a" / "b"))

    assert done.returncode == 0
    assert list((tmp_path / "a" / "b").glob("*.schema.json"))


def test_partners_add_appends_a_loadable_partner_with_a_0600_secret_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(
        CONFIG.format(store=tmp_path / "gateway.db").replace(
            '{ env = "UNSET_ACME_SECRET" }', f'"{SECRET}"'
        )
    )
    environ = {"UNSET_AMQP_URL": "amqp://guest:guest@127.0.0.1/"}

    code = main(
        [
            "partners",
            "add",
            "globex",
            "--config",
            str(path),
            "--documents",
            "invoice",
            "advance_ship_notice",
        ],
        environ,
    )

    out = capsys.readouterr().out
    secret_file = tmp_path / "secrets" / "globex.whsec"
    secret = secret_file.read_text().strip()
    partner = load_config(path, environ).partners[1]
    assert code == 0
    assert oct(secret_file.stat().st_mode & 0o777) == "0o600"
    assert secret.startswith("whsec_")
    assert secret in out
    assert (partner.id, partner.sends) == ("globex", frozenset({"invoice", "advance_ship_notice"}))
    assert partner.secrets[0].reveal() == secret
    assert "http://127.0.0.1:8080/webhooks/globex/invoice" in out
    assert "Standard Webhooks" in out


def test_partners_add_with_an_env_reference_writes_no_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(CONFIG.format(store=tmp_path / "gateway.db"))
    environ = {"UNSET_AMQP_URL": "amqp://x@127.0.0.1/", "UNSET_ACME_SECRET": SECRET}

    code = main(
        ["partners", "add", "globex", "--config", str(path), "--secret-env", "GLOBEX"], environ
    )

    out = capsys.readouterr().out
    [globex] = [p for p in tomllib.loads(path.read_text())["partners"] if p["id"] == "globex"]
    assert code == 0
    assert globex["secrets"] == [{"env": "GLOBEX"}]
    assert not (tmp_path / "secrets").exists()
    assert "set GLOBEX" in out


@pytest.mark.parametrize(
    ("partner_id", "extra", "message"),
    [
        ("acme", [], "already there"),
        ("Bad Id", [], "not a partner id"),
        ("globex", ["--documents", "stock"], "unknown document types: stock"),
    ],
    ids=["duplicate", "bad-id", "unknown-document"],
)
def test_partners_add_refuses_and_leaves_the_file_as_it_was(
    config: Path,
    capsys: pytest.CaptureFixture[str],
    partner_id: str,
    extra: list[str],
    message: str,
) -> None:
    before = config.read_bytes()

    code = main(["partners", "add", partner_id, "--config", str(config), *extra], {})

    assert code == 2
    assert message in capsys.readouterr().err
    assert config.read_bytes() == before


def test_partners_add_rolls_back_when_the_result_does_not_load(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = config.read_bytes()

    # The file's own secrets are not set: the new config cannot load, nothing is kept.
    code = main(["partners", "add", "globex", "--config", str(config)], {})

    assert code == 1
    assert "UNSET_ACME_SECRET" in capsys.readouterr().err
    assert config.read_bytes() == before
    assert not (config.parent / "secrets" / "globex.whsec").exists()


def test_unresolved_secrets_are_distinct_stand_ins_that_name_their_reference(
    tmp_path: Path,
) -> None:
    path = tmp_path / "gateway.toml"
    two = CONFIG + '\n[[partners]]\nid = "globex"\nname = "Globex"\n'
    path.write_text(
        two.format(store=tmp_path / "gateway.db")
        + 'secrets = [{ env = "UNSET_GLOBEX" }]\nsends = ["invoice"]\n'
    )

    config = load_config(path, {}, resolve_secrets=False)

    acme, globex = (p.secrets[0] for p in config.partners)
    assert acme.source == "unresolved:env:UNSET_ACME_SECRET"
    assert acme.key != globex.key
    assert config.amqp.url.source == "unresolved:env:UNSET_AMQP_URL"
