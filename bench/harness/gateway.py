"""The gateway as a system under test: its bench configuration, and reading its metrics.

The gateway is started as the operator starts it, `gateway run CONFIG.toml`, with a config that
differs from the defaults only where a bench must: loopback ports of its own, the store in the
run's folder, the run's broker, bench partners allowed to send purchase orders without a rate
limit in the way, and WARNING logging (the peers and ceilings log no access lines either); for
the orders scenario, the customer API with one account ordering from a catalogue, no rate
limit either.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bench.harness.documents import BenchPartner

__all__ = [
    "BENCH_CUSTOMER",
    "GATEWAY_BIN",
    "NO_RATE_LIMIT",
    "BenchCustomer",
    "gateway_config_text",
    "write_gateway_config",
]

GATEWAY_BIN = Path(sys.executable).with_name("gateway")
#: A per-partner rate limit far above anything one machine can post: the bench measures speed.
NO_RATE_LIMIT = (1_000_000.0, 1_000_000)


@dataclass(frozen=True)
class BenchCustomer:
    """The customer API account the orders scenario orders as: its key, ship-to, catalogue."""

    id: str
    api_key: str
    ship_to: str
    items: tuple[str, ...]


BENCH_CUSTOMER = BenchCustomer(
    id="bench-customer",
    api_key="bench-orders-api-key-0123456789abcdef",
    ship_to="STORE-1",
    # `[customer_api] items`: the orders' SKUs are checked against a catalogue, as in production.
    items=tuple(f"BENCH-SKU-{n:04d}" for n in range(100)),
)


def _s(value: str) -> str:
    # A JSON string is a valid TOML basic string for the text written here.
    return json.dumps(value)


def gateway_config_text(
    *,
    http_port: int,
    admin_port: int,
    store_path: Path,
    amqp_url: str,
    partners: Sequence[BenchPartner],
    synchronous: Literal["FULL", "NORMAL"] = "FULL",
    log_level: str = "WARNING",
    document: str = "purchase_order",
    workflow: bool | None = None,
    customer_api_port: int | None = None,
    customer: BenchCustomer = BENCH_CUSTOMER,
) -> str:
    """Return the TOML configuration of a bench gateway.

    `workflow` True or False writes `[workflow] enabled = ...`; None leaves the section out
    (the threads then run when `[erp] publish_events` is on, its default). With
    `customer_api_port`, the customer API listens there with `customer`'s account.
    """
    per_second, burst = NO_RATE_LIMIT
    lines = [
        "# Written by bench/harness/gateway.py for one bench run.",
        "[http]",
        'host = "127.0.0.1"',
        f"port = {http_port}",
        "",
        "[admin]",
        'host = "127.0.0.1"',
        f"port = {admin_port}",
        "",
        "[store]",
        f"path = {_s(str(store_path))}",
        f"synchronous = {_s(synchronous)}",
        "",
        "[amqp]",
        f"url = {_s(amqp_url)}",
        "",
        "[log]",
        f"level = {_s(log_level)}",
    ]
    if workflow is not None:
        lines += ["", "[workflow]", f"enabled = {'true' if workflow else 'false'}"]
    if customer_api_port is not None:
        lines += [
            "",
            "[customer_api]",
            'host = "127.0.0.1"',
            f"port = {customer_api_port}",
            f"items = [{', '.join(_s(item) for item in customer.items)}]",
            "",
            "[[customers]]",
            f"id = {_s(customer.id)}",
            f"name = {_s('Bench customer ' + customer.id)}",
            f"api_keys = [{_s(customer.api_key)}]",
            f"ship_tos = [{_s(customer.ship_to)}]",
            f"rate_limit = {{ per_second = {per_second}, burst = {burst} }}",
        ]
    for partner in partners:
        lines += [
            "",
            "[[partners]]",
            f"id = {_s(partner.id)}",
            f"name = {_s('Bench partner ' + partner.id)}",
            f"secrets = [{_s(partner.secret)}]",
            f"sends = [{_s(document)}]",
            f"rate_limit = {{ per_second = {per_second}, burst = {burst} }}",
        ]
    return "\n".join(lines) + "\n"


def write_gateway_config(path: Path, **settings: object) -> Path:
    """Write `gateway_config_text(**settings)` to `path` and return it."""
    path.write_text(gateway_config_text(**settings))  # type: ignore[arg-type]
    return path
