"""What the customer API tests share: accounts, a config with `[customer_api]`, a client."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
from gatewaykit import Partner, write_config

from gateway.app import Gateway

ACME_KEY = "acme-" + secrets.token_urlsafe(32)
GLOBEX_KEY = "globex-" + secrets.token_urlsafe(32)
# A 3PL that reports orders' status by webhook (a logistics source).
LOGISTICS = Partner("shipco")


def customers_toml(
    *,
    stale_after_s: float = 3600.0,
    items: str = "[]",
    per_second: float = 100_000.0,
    burst: int = 100_000,
) -> str:
    """`[customer_api]` on a free port and two accounts, acme and globex."""
    return f"""
[customer_api]
port = 0
status_stale_after_s = {stale_after_s}
status_poll_interval_s = 0.05
items = {items}

[[customers]]
id = "acme-retail"
name = "Acme Retail"
api_keys = ["{ACME_KEY}"]
locations = ["DC-EAST", "DC-WEST"]
ship_tos = ["STORE-1", "STORE-2"]
rate_limit = {{ per_second = {per_second}, burst = {burst} }}

[[customers]]
id = "globex"
name = "Globex"
api_keys = ["{GLOBEX_KEY}"]
locations = ["DC-WEST"]
ship_tos = ["GLOBEX-HQ"]
rate_limit = {{ per_second = 100000.0, burst = 100000 }}
"""


def write_api_config(
    folder: Path, amqp_url: str, *, erp: str = "", extra: str = "", **kw: object
) -> Path:
    """A gateway config with the customer API, the logistics partner, `erp` sections and
    `extra` ones."""
    return write_config(
        folder,
        amqp_url,
        [LOGISTICS],
        extra=customers_toml(**kw) + erp + extra,  # type: ignore[arg-type]
        documents='["order_status"]',
    )


def api_client(gateway: Gateway, key: str = ACME_KEY) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{gateway.customer_api_port}/api/v1",
        headers={"x-api-key": key},
        timeout=30,
    )


def order_body(n: int, *, ship_to: str = "STORE-1", sku: str = "SKU-1") -> dict[str, object]:
    return {
        "ship_to": ship_to,
        "customer_po_number": f"CPO-{n}",
        "lines": [{"sku": sku, "quantity": "2", "uom": "EA"}, {"sku": "SKU-2", "quantity": "1"}],
    }
