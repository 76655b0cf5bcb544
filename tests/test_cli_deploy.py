"""deploy/: the systemd unit verifies and the container build copies what the package needs."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
UNIT = ROOT / "deploy" / "gateway.service"
CONTAINERFILE = ROOT / "deploy" / "Containerfile"


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # verify checks that ExecStart's program exists: point it at one that does.
    unit = tmp_path / "gateway.service"
    unit.write_text(UNIT.read_text().replace("/opt/partner-gateway/.venv/bin/gateway", "/bin/true"))

    done = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == ""


def test_the_unit_drains_on_sigterm_and_does_not_restart_a_config_error() -> None:
    text = UNIT.read_text()
    settings = dict(re.findall(r"^(\w+)=(.*)$", text, flags=re.MULTILINE))

    assert settings["KillSignal"] == "SIGTERM"
    assert settings["ExecReload"] == "/bin/kill -HUP $MAINPID"  # after the check:
    assert "ExecReload=/opt/partner-gateway/.venv/bin/gateway config check" in text
    assert settings["RestartPreventExitStatus"] == "2"  # gateway/cli.py: config error
    assert settings["NoNewPrivileges"] == "true"
    assert settings["User"] == "gateway"


def test_the_container_build_copies_every_package_and_runs_as_non_root() -> None:
    text = CONTAINERFILE.read_text()
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]["find"]["include"]
    copied = set(re.findall(r"^COPY (\w+) \./\1$", text, flags=re.MULTILINE))

    assert {p.rstrip("*") for p in packages} <= copied
    assert re.search(r"^USER gateway$", text, flags=re.MULTILINE)
    assert "/readyz" in text.split("HEALTHCHECK", 1)[1]
    assert 'VOLUME ["/var/lib/gateway"]' in text
