"""Hostile and heavy requests against the running gateway (`gateway run`), over real sockets.

The gateway runs as a process of its own, as in production: a stalled event loop cannot hold
up the test's clients.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from gatewaykit import GatewayProcess, Partner, listening, write_config

from canonical import sample_body
from gateway.localbroker import free_port

pytestmark = [pytest.mark.anyio, pytest.mark.rabbitmq, pytest.mark.slow]

ACME = Partner("acme")


def start_gateway(tmp_path: Path, amqp_url: str, *, http: str = "") -> tuple[GatewayProcess, int]:
    """Start `gateway run` for ACME (who may send invoices too); return it and its HTTP port."""
    port = free_port()
    config = write_config(
        tmp_path,
        amqp_url,
        [ACME],
        http_port=port,
        admin_port=free_port(),
        extra='[log]\nlevel = "WARNING"\n',
        documents='["purchase_order", "invoice"]',
    )
    config.write_text(config.read_text().replace("[http]\n", f"[http]\n{http}", 1))
    gateway = GatewayProcess(config, tmp_path / "gateway.log")
    gateway.start()
    return gateway, port


# Item 3: repeated webhook-signature headers

# The largest head the server lets through (`[http]` maxima): ~10,000 fields in 1 MiB.
HEAD_LIMITS = "max_head_bytes = 1048576\nmax_headers = 10000\n"
REPEATS = 9_900


async def test_thousands_of_signature_headers_cost_no_more_than_any_head_of_their_size(
    tmp_path: Path, amqp_url: str
) -> None:
    # A stranger's request with the head split into ~10,000 webhook-signature fields. Joined
    # pairwise they held the event loop ~1 s (15,000 of 1 KB, before heads were bounded: 239 s)
    # and every listener with it. Timed against a signed request whose head has as many
    # fields of the same size that the ingress does not read: the best of three of each.
    gateway, port = start_gateway(tmp_path, amqp_url, http=HEAD_LIMITS)
    body = sample_body("purchase_order", 1)
    entry = "v1," + "A" * 77
    timings: dict[str, list[float]] = {"padded": [], "hostile": []}
    statuses: dict[str, set[int]] = {"padded": set(), "hostile": set()}
    try:
        await listening(port)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            for n in range(3):
                signed = ACME.headers(body, webhook_id=f"padded-{n}")
                unsigned = {k: v for k, v in signed.items() if k != "webhook-signature"}
                heads = {
                    "padded": [*signed.items(), *[("x-webhook-padding", entry)] * REPEATS],
                    "hostile": [*unsigned.items(), *[("webhook-signature", entry)] * REPEATS],
                }
                for name, headers in heads.items():
                    started = time.monotonic()
                    response = await http.post(
                        "/webhooks/acme/purchase_order", content=body, headers=headers
                    )
                    timings[name].append(time.monotonic() - started)
                    statuses[name].add(response.status_code)
    finally:
        gateway.terminate()

    padded, hostile = min(timings["padded"]), min(timings["hostile"])
    print(f"\nbest of 3: padded {padded:.3f} s, hostile {hostile:.3f} s")
    assert statuses == {"padded": {202}, "hostile": {401}}
    assert hostile <= 2 * padded + 0.05
