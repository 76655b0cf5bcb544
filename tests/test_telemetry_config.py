"""`[telemetry]`: absent is off, present loads with its defaults, each rule is reported."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_config import errors_of, partner, write
from test_config_lint import GOOD, run_lint

from gateway.config import load_config
from gateway.telemetry import build_tracer, tracer_factory


def test_without_a_telemetry_table_there_is_no_tracer(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, partner()), {})

    assert config.telemetry is None
    assert build_tracer(config.telemetry) is None
    assert tracer_factory(config.telemetry) is None


def test_a_telemetry_table_loads_with_its_defaults(tmp_path: Path) -> None:
    text = partner() + '[telemetry]\notlp_endpoint = "http://collector.local:4318/"\n'

    config = load_config(write(tmp_path, text), {})

    assert config.telemetry is not None
    assert config.telemetry.traces_url == "http://collector.local:4318/v1/traces"
    assert (config.telemetry.service_name, config.telemetry.sample_ratio) == (
        "partner-gateway",
        1.0,
    )


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ('otlp_endpoint = "collector:4318"', "expected http(s)://host[:port]"),
        ('otlp_endpoint = "http://c:4318/v1/traces"', "/v1/traces is added to it"),
        ('otlp_endpoint = "http://c:4318"\nsample_ratio = 1.5', "sample_ratio"),
        ('otlp_endpoint = "http://c:4318"\nendpoint = "x"', "endpoint"),
        ("", "otlp_endpoint"),
    ],
    ids=["no-scheme", "traces-path", "ratio-above-one", "unknown-key", "no-endpoint"],
)
def test_each_telemetry_rule_is_reported(tmp_path: Path, table: str, expected: str) -> None:
    errors = errors_of(write(tmp_path, partner() + f"[telemetry]\n{table}\n"))

    assert any(expected in error for error in errors), errors


def test_a_sample_ratio_of_zero_is_a_dead_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = '\n[telemetry]\notlp_endpoint = "http://127.0.0.1:4318"\nsample_ratio = 0\n'

    code, lines = run_lint(tmp_path, capsys, GOOD + table)

    assert code == 0
    assert len(lines) == 1
    assert "telemetry.sample_ratio: dead: 0 records no trace the gateway starts" in lines[0]
