"""The bench harness: what it sends is what the gateway accepts, and a quick run works end to end.

The fast tests pin the harness's contracts with the gateway (config, order body, signatures)
and its verdicts (latency, backlog). The slow ones run wrk for real: its Lua signatures verify
with the gateway's own check, and `python -m bench ingest-burst --quick` on the HTTP ceiling
writes its JSON, markdown and plot.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.harness.documents import (
    PO_NUMBER_PATTERN,
    BenchPartner,
    bench_partners,
    order_template,
)
from bench.harness.gateway import write_gateway_config
from bench.harness.processes import Watch
from bench.harness.wrk import SIGN_SCRIPT, write_wrk_input
from canonical.codec import decode_document
from canonical.errors import SignatureInvalid
from gateway.config import check_config, load_config
from protocols.http.signatures import verify

# The bench's own packages (the `bench` extra) may be absent where only the gateway is installed.
np = pytest.importorskip("numpy")
pytest.importorskip("matplotlib")

from bench.harness.latency import Requests, analyse_step  # noqa: E402
from bench.harness.openloop import LoadInput, SignedRequests  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("workflow", "threads_on"), [(None, True), (True, True), (False, False)])
def test_bench_gateway_config_passes_the_gateways_own_check(
    tmp_path: Path, workflow: bool | None, threads_on: bool
) -> None:
    config = write_gateway_config(
        tmp_path / "gateway.toml",
        http_port=18080,
        admin_port=19090,
        store_path=tmp_path / "gateway.db",
        amqp_url="amqp://guest:guest@127.0.0.1:5672/",
        partners=bench_partners(3),
        workflow=workflow,
    )

    code, lines = check_config(config, {})

    assert code == 0, lines
    # ingest-burst's `gateway` and `gateway-no-workflow` differ in this alone.
    assert load_config(config, {}).workflow.enabled is threads_on


def test_bench_order_decodes_as_a_canonical_purchase_order() -> None:
    body = order_template().body(42)

    document = decode_document("purchase_order", body)

    assert getattr(document, "po_number", None) == "BPO-0000000042"


def test_sequence_number_is_found_again_in_the_body() -> None:
    found = PO_NUMBER_PATTERN.search(order_template().body(1234567))

    assert found is not None
    assert int(found.group(1)) == 1234567


def test_open_loop_requests_carry_a_valid_standard_webhooks_signature() -> None:
    partner = bench_partners(1)[0]
    template = order_template()
    load = LoadInput(
        run="t", head=template.head, tail=template.tail, partners=[(partner.id, partner.secret)]
    )
    raw = SignedRequests(load, "127.0.0.1", 8080, seq_start=7).make(0)
    head, _, body = raw.partition(b"\r\n\r\n")
    headers = dict(
        (k.strip().lower(), v.strip())
        for k, _, v in (line.partition(":") for line in head.decode().split("\r\n")[1:])
    )

    verify([partner.key], headers, body, now=time.time())  # raises if the signature is wrong


def _requests(due_ms: Any, latency_ms: float, status: int = 202) -> Requests:
    due = (due_ms * 1e6).astype(np.int64)
    return {
        "seq": np.arange(due.size, dtype=np.int64),
        "due_ns": due,
        "sent_ns": due,
        "done_ns": due + int(latency_ms * 1e6),
        "status": np.full(due.size, status, np.int16),
    }


def test_a_step_that_keeps_up_is_sustained() -> None:
    requests = _requests(np.arange(10_000, dtype=np.float64), latency_ms=2.0)  # 1000/s, 10 s
    received = requests["due_ns"] + 5_000_000

    step = analyse_step(requests, requests["seq"], received, offered_rate=1000)

    assert step["sustained"]
    assert step["p50_ms"] == pytest.approx(5.0)


def test_a_step_whose_backlog_grows_is_not_sustained() -> None:
    due_ms = np.arange(10_000, dtype=np.float64)
    requests = _requests(due_ms, latency_ms=2.0)
    received = (due_ms * 1.1 * 1e6).astype(np.int64)  # delivers at 10 % under the offered rate

    step = analyse_step(requests, requests["seq"], received, offered_rate=1000)

    assert not step["sustained"]


def test_a_step_with_failed_requests_is_not_sustained() -> None:
    requests = _requests(np.arange(10_000, dtype=np.float64), latency_ms=2.0, status=503)

    step = analyse_step(requests, np.zeros(0, np.int64), np.zeros(0, np.int64), offered_rate=1000)

    assert not step["sustained"]
    assert step["errors"] == 10_000


class _VerifyingServer:
    """A tiny HTTP/1.1 server on loopback that checks every request's webhook signature."""

    def __init__(self, partners: list[BenchPartner]) -> None:
        self.partners = partners
        self.keys = {p.id: p.key for p in partners}
        self.valid = self.invalid = 0
        self.ids: set[str] = set()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.open = True

    def serve(self) -> None:
        self.sock.settimeout(0.2)
        while self.open:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn: socket.socket) -> None:
        # wrk resets its connections when its time is up: that ends a handler, nothing more.
        with conn, contextlib.suppress(ConnectionError):
            self.exchange(conn)

    def exchange(self, conn: socket.socket) -> None:
        buffer = b""
        while True:
            while b"\r\n\r\n" not in buffer:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buffer += chunk
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (line.partition(":") for line in lines[1:])
            }
            length = int(headers["content-length"])
            while len(buffer) < length:
                buffer += conn.recv(65536)
            body, buffer = buffer[:length], buffer[length:]
            partner = lines[0].split()[1].split("/")[2]
            try:
                verify([self.keys[partner]], headers, body, now=time.time())
                valid = True
            except SignatureInvalid:
                valid = False
            with self.lock:
                self.valid += valid
                self.invalid += not valid
                self.ids.add(headers["webhook-id"])
            conn.sendall(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}")


@pytest.fixture
def verifying_server() -> Iterator[_VerifyingServer]:
    server = _VerifyingServer(bench_partners(4))
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    yield server
    server.open = False
    thread.join(timeout=5)
    server.sock.close()


@pytest.mark.slow
def test_wrk_lua_signatures_verify_and_every_webhook_id_is_new(
    verifying_server: _VerifyingServer, tmp_path: Path
) -> None:
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed")
    wrk_input = write_wrk_input(
        tmp_path / "input.lua",
        run="t",
        template=order_template(),
        partners=verifying_server.partners,
    )

    subprocess.run(
        [
            "wrk",
            "-t2",
            "-c4",
            "-d1s",
            "-s",
            str(SIGN_SCRIPT),
            f"http://127.0.0.1:{verifying_server.port}",
            "--",
            "0",
            str(wrk_input),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )

    assert verifying_server.valid > 0
    assert verifying_server.invalid == 0
    assert len(verifying_server.ids) == verifying_server.valid


@pytest.mark.slow
@pytest.mark.parametrize("system", ["http-ceiling", "durable-sketch"])
def test_quick_ingest_burst_writes_the_systems_result(tmp_path: Path, system: str) -> None:
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed")

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "ingest-burst",
            "--quick",
            "--systems",
            system,
            "--results-dir",
            str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "| durable ingest / HTTP ceiling (uvicorn) |" in done.stdout
    (result_file,) = tmp_path.glob("ingest-burst-*.json")
    result = json.loads(result_file.read_text())
    (measured,) = result["systems"]
    assert measured["error"] is None
    # Every signed order answered 2xx: the sketch verified and decoded each one.
    assert measured["figures"]["accepted_per_s"] > 0
    assert measured["figures"]["errors"] == 0
    assert Path(result["files"]["plot"]).exists()


def test_process_watch_tells_the_root_process_from_its_children() -> None:
    # An idle parent with a busy child: the tree's share counts the child, the root's not.
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys; subprocess.run([sys.executable, '-c', "
            "'import time\\nend = time.monotonic() + 3\\nwhile time.monotonic() < end: pass'])",
        ],
        start_new_session=True,
    )
    try:
        watch = Watch("parent", parent.pid)
        time.sleep(0.5)  # the child is running
        since = watch.read()
        time.sleep(1.0)
        until = watch.read()
    finally:
        os.killpg(parent.pid, signal.SIGKILL)
        parent.wait()
    figures = watch.figures(since, until)
    # The spinning child gets what a busy machine leaves it (0.49 of a core once, beside
    # other work): the tree's share is well above the idle root's, whatever the load.
    assert figures.cpu_share > 0.2
    assert figures.root_cpu_share < 0.1
    assert figures.cpu_share > 4 * figures.root_cpu_share
