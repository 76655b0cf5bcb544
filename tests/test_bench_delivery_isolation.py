"""The delivery-isolation bench: its gateway config is valid, and its counts read receipts right.

The scenario itself needs a broker and a minute (`python -m bench delivery-isolation --quick`);
these pin what it relies on without starting anything.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from gateway.config import check_config, load_config

np = pytest.importorskip("numpy")
pytest.importorskip("matplotlib")

from bench.scenarios.delivery_isolation import (  # noqa: E402
    HEALTHY,
    OTHER,
    healthy_figures,
    isolation_config,
)


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(
        isolation_config(
            http_port=18080,
            admin_port=19090,
            store_path=tmp_path / "gateway.db",
            amqp_url="amqp://guest:guest@127.0.0.1:5672/",
            queue="bench.gateway-erp.test",
            endpoints={HEALTHY: 18001, OTHER: 18002},
            timeout_s=2.0,
        )
    )
    return path


def test_isolation_config_passes_the_gateways_own_check(tmp_path: Path) -> None:
    code, lines = check_config(_config(tmp_path), {})

    assert code == 0, lines


def test_isolation_config_gives_both_partners_the_same_timeout(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path), {})

    timeouts = {p.id: p.outbound.timeout_s for p in config.partners if p.outbound is not None}

    assert timeouts == {HEALTHY: 2.0, OTHER: 2.0}


def test_healthy_figures_count_each_order_once_and_name_the_missing() -> None:
    due = np.arange(4, dtype=np.int64) * 1_000_000_000  # orders 0..3, one a second
    seq = np.array([0, 1, 1, 2, -1], dtype=np.int64)  # order 1 twice, 3 never, one stray call
    received = np.array([10, 20, 30, 40, 50], dtype=np.int64) * 1_000_000 + due[[0, 1, 1, 2, 3]]

    figures = healthy_figures(due, seq, received)

    assert (figures["healthy_delivered"], figures["healthy_missing"]) == (3, 1)
    assert figures["healthy_duplicates"] == 1
    assert figures["p50_ms"] == 20.0


def test_healthy_figures_are_plain_json() -> None:
    due = np.arange(3, dtype=np.int64) * 5_000_000
    seq = np.arange(3, dtype=np.int64)

    figures = healthy_figures(due, seq, due + 1_000_000)

    assert msgspec.json.decode(msgspec.json.encode(figures))["healthy_delivered"] == 3
