"""Hostile and heavy requests against the running gateway (`gateway run`), over real sockets.

The gateway runs as a process of its own, as in production: a stalled event loop cannot hold
up the test's clients, and its memory is read from /proc for the whole process tree (the
gateway and its store's writer process).
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from pathlib import Path

import anyio
import httpx
import msgspec
import pytest
from gatewaykit import GatewayProcess, Partner, bound_queue, listening, write_config

from canonical import sample_body, sample_document
from canonical.codec import encode_document
from canonical.common import Money
from canonical.invoices import Invoice
from gateway.config import MIB
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


# Item 6: bytes in flight bounded


BODY_BUDGET = 32 * MIB
# Bytes of the process tree per byte of body room taken, at peak: the body and its envelope in
# the gateway, the batch framed for the writer process, and there the frame, the decoded rows
# and SQLite's copies while it commits, plus the allocators' slack. Measured 5.1-5.5 on a fresh
# gateway and about 7 once repeated bursts have settled (README, "Memory"). On 2026-12-07, 13
# runs of this test (8 on the day's code, 5 on d45f78d before it) read 271-454 MiB above idle,
# a factor of 6.5-12.3 once the read-ahead is taken off: the gateway's and the writer's heaps
# both vary from run to run; 10 failed one of three full runs. 14 (510 MiB) holds them, and still
# fails without the bound, which this test saw at 1,174 MiB above idle.
AMPLIFICATION = 14
# What uvicorn reads of a body before the app asks for it, for each request waiting for room:
# up to its 64 KiB high-water mark, plus the one read that crossed it (uvloop reads 256,000).
SERVER_READ_AHEAD = 65_536 + 256_000
CONCURRENT = 200


def invoice_of_about(size: int) -> bytes:
    """A valid invoice whose JSON is just under `size` bytes (long line descriptions)."""
    template = sample_document("invoice", 1)
    assert isinstance(template, Invoice)
    assert template.tax is not None
    assert template.charges is not None
    line = msgspec.structs.replace(template.lines[0], description="x" * 500)

    def with_lines(count: int) -> bytes:
        lines = tuple(
            msgspec.structs.replace(line, line_number=n, po_line_number=n)
            for n in range(1, count + 1)
        )
        subtotal = sum((each.amount.amount for each in lines), Decimal(0))
        total = subtotal + template.tax.amount + template.charges.amount
        return encode_document(
            msgspec.structs.replace(
                template,
                lines=lines,
                subtotal=Money(amount=subtotal, currency="USD"),
                total=Money(amount=total, currency="USD"),
            )
        )

    one, two = len(with_lines(1)), len(with_lines(2))
    count = 1 + (size - one) // (two - one)
    while len(body := with_lines(count)) > size:
        count -= 1
    return body


def tree_rss(pid: int) -> int:
    """Resident bytes of process `pid` and all its descendants, from /proc."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


class PeakRss:
    """Samples the RSS of a process tree every 10 ms in a thread, keeping the highest."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, tree_rss(self.pid))


async def test_200_concurrent_large_invoices_stay_within_the_configured_body_budget(
    tmp_path: Path, amqp_url: str
) -> None:
    # 200 partner requests of a 1 MiB invoice at once peaked 1.2-1.5 GiB above the idle
    # gateway: every body in flight at once, about 7 copies of each. With the body budget,
    # requests wait for room before their bodies are read: the peak is the budget times a
    # stated factor, plus what the server reads ahead for each waiting request. None is
    # refused here (the wait allows for all of them): bounding memory costs no acceptance.
    body = invoice_of_about(MIB)
    assert MIB - 2048 < len(body) <= MIB
    gateway, port = start_gateway(
        tmp_path,
        amqp_url,
        http=(
            f"max_body_bytes_in_flight = {BODY_BUDGET}\n"
            f"max_partner_body_bytes_in_flight = {BODY_BUDGET}\n"
            "body_wait_s = 100.0\n"
        ),
    )
    statuses: dict[int, int] = {}
    try:
        async with bound_queue(amqp_url, "test.limits.memory"):
            await listening(port)
            limits = httpx.Limits(max_connections=CONCURRENT)
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", timeout=100, limits=limits
            ) as http:

                async def post(n: int) -> None:
                    headers = ACME.headers(body, webhook_id=f"invoice-{n}")
                    response = await http.post(
                        "/webhooks/acme/invoice", content=body, headers=headers
                    )
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

                await post(-1)  # warm: the first large request's code paths and heap are idle cost
                assert gateway.process is not None
                idle = tree_rss(gateway.process.pid)
                with PeakRss(gateway.process.pid) as rss, anyio.fail_after(100):
                    async with anyio.create_task_group() as tg:
                        for n in range(CONCURRENT):
                            tg.start_soon(post, n)
    finally:
        gateway.terminate()

    allowed = AMPLIFICATION * BODY_BUDGET + CONCURRENT * SERVER_READ_AHEAD
    print(
        f"\nidle {idle / MIB:.0f} MiB, peak {rss.peak / MIB:.0f} MiB: "
        f"{(rss.peak - idle) / MIB:.0f} MiB above idle, allowed {allowed / MIB:.0f} MiB"
    )
    assert statuses == {202: CONCURRENT + 1}
    assert rss.peak - idle <= allowed
