"""The partner-facing listener against hostile connections, on the running gateway over sockets.

Slow and idle connections are closed at their deadlines and never take a partner's place; heads
are bounded in bytes and header count; the server's own refusals are problem+json.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

import anyio
import httpx
import pytest
from anyio.abc import SocketStream
from anyio.streams.text import TextReceiveStream
from gatewaykit import Partner, client, load, running, write_config
from rawhttp import connect, head, parse, raise_fd_limit, read_until_closed, signed_post

from canonical import sample_body
from gateway.config import GatewayConfig

pytestmark = [pytest.mark.anyio, pytest.mark.rabbitmq]

ACME = Partner("acme")
HEAD_TIMEOUT = 2.0
# Timers, accept and close on a loaded 2-core machine: how late a deadline may be kept; and
# how early (asyncio runs a timer up to its clock resolution early).
LATE = 1.0
EARLY = 0.05
PO = "/webhooks/acme/purchase_order"
SLOWLORIS = Path(__file__).with_name("slowloris.py")


def edge_config(
    folder: Path, amqp_url: str, http: str = "", *, head_timeout_s: float = HEAD_TIMEOUT
) -> GatewayConfig:
    extra = f"[http]\nhead_timeout_s = {head_timeout_s}\n{http}"
    path = write_config(folder, amqp_url, [ACME])
    # write_config writes its own [http] table: put ours into it rather than beside it.
    text = path.read_text().replace("[http]\n", extra, 1)
    path.write_text(text)
    return load(path)


@pytest.mark.slow
async def test_slowloris_leaves_partners_served_and_idle_connections_closed_at_the_deadline(
    tmp_path: Path, amqp_url: str
) -> None:
    """1,500 silent and 200 byte-by-byte connections; a partner's 50 documents all get 202."""
    raise_fd_limit(4096)  # inherited by the attacker: 1,700 descriptors on each side
    head_timeout = 5.0  # the default
    config = edge_config(tmp_path, amqp_url, head_timeout_s=head_timeout)
    latencies: list[float] = []
    statuses: list[int] = []

    async def post(http: httpx.AsyncClient, n: int) -> None:
        body = sample_body("purchase_order", n)
        started = time.monotonic()
        response = await http.post(PO, content=body, headers=ACME.headers(body))
        latencies.append(time.monotonic() - started)
        statuses.append(response.status_code)

    with anyio.fail_after(60):
        async with running(config) as gateway, client(gateway) as http:
            attack = [sys.executable, str(SLOWLORIS), str(gateway.http_port), "1500", "200"]
            async with await anyio.open_process(attack, stderr=None) as attacker:
                assert attacker.stdout is not None
                lines = TextReceiveStream(attacker.stdout)
                assert (await lines.receive()).strip() == "ready"
                attacked = time.monotonic()
                for first in range(0, 50, 10):  # ten at a time, as a partner's sender would
                    async with anyio.create_task_group() as posts:
                        for n in range(first, first + 10):
                            posts.start_soon(post, http, n)
                posting = time.monotonic() - attacked
                report = ""
                async for text in lines:
                    report += text
    outcome = json.loads(report)
    idle, trickling = outcome["open_for"]["idle"], outcome["open_for"]["trickling"]

    assert statuses == [202] * 50
    # Usually 50-100 ms each (a synchronous=FULL commit); a second is what "not starved" must
    # at least mean.
    assert max(latencies) < 1.0
    # Every attacking connection was still open while the partner posted.
    assert posting < head_timeout
    assert len(idle) == 1500
    assert head_timeout - EARLY <= min(idle) <= max(idle) < head_timeout + LATE, outcome
    assert len(trickling) == 200
    assert head_timeout - EARLY <= min(trickling) <= max(trickling) < head_timeout + LATE
    assert outcome["answers"] == ["HTTP/1.1 408 Request Timeout"] * 200


async def test_a_connection_that_sends_nothing_is_closed_silently_at_the_head_deadline(
    tmp_path: Path, amqp_url: str
) -> None:
    async with running(edge_config(tmp_path, amqp_url)) as gateway:
        assert gateway.http_port is not None
        with anyio.fail_after(HEAD_TIMEOUT + 10):
            async with await connect(gateway.http_port) as stream:
                opened = time.monotonic()
                received = await read_until_closed(stream)
                waited = time.monotonic() - opened

    assert received == b""
    assert HEAD_TIMEOUT - EARLY <= waited < HEAD_TIMEOUT + LATE


async def test_a_head_sent_byte_by_byte_is_answered_408_at_the_head_deadline(
    tmp_path: Path, amqp_url: str
) -> None:
    trickled_head = signed_post(ACME, sample_body("purchase_order", 1))
    async with running(edge_config(tmp_path, amqp_url)) as gateway:
        assert gateway.http_port is not None
        with anyio.fail_after(HEAD_TIMEOUT + 10):
            async with await connect(gateway.http_port) as stream:
                opened = time.monotonic()
                async with anyio.create_task_group() as tg:

                    async def send_slowly() -> None:
                        for byte in trickled_head:
                            await stream.send(bytes([byte]))
                            await anyio.sleep(0.2)

                    tg.start_soon(send_slowly)
                    answer = parse(await read_until_closed(stream))
                    waited = time.monotonic() - opened
                    tg.cancel_scope.cancel()

    assert answer.status == 408
    assert answer.problem()["type"] == "https://partner-gateway.dev/problems/request-timeout"
    assert answer.headers["connection"] == "close"
    assert HEAD_TIMEOUT - EARLY <= waited < HEAD_TIMEOUT + LATE


async def test_a_body_short_of_its_content_length_is_answered_408_at_the_body_deadline(
    tmp_path: Path, amqp_url: str
) -> None:
    config = edge_config(tmp_path, amqp_url, "body_timeout_s = 1.0\n")
    body = sample_body("purchase_order", 2)
    async with running(config) as gateway:
        assert gateway.http_port is not None
        with anyio.fail_after(10):
            async with await connect(gateway.http_port) as stream:
                await stream.send(signed_post(ACME, body) + body[:-1])
                sent = time.monotonic()
                answer = parse(await read_until_closed(stream))
                waited = time.monotonic() - sent

    assert answer.status == 408
    assert answer.problem()["type"] == "https://partner-gateway.dev/problems/request-timeout"
    # Nothing more arrives after the head's own read, so the rate buys no time: 1 s.
    assert 1.0 - EARLY <= waited < 1.0 + LATE


async def send_at_rate(stream: SocketStream, data: bytes, bytes_per_s: float) -> None:
    """Send `data` in 10 pieces per second at `bytes_per_s`."""
    step = max(1, int(bytes_per_s / 10))
    for offset in range(0, len(data), step):
        await stream.send(data[offset : offset + step])
        await anyio.sleep(0.1)


async def test_a_body_that_keeps_the_minimum_rate_is_accepted_after_the_body_timeout(
    tmp_path: Path, amqp_url: str
) -> None:
    # 937 bytes at 500 B/s take ~1.9 s: past the 1 s timeout, but the rate buys time.
    config = edge_config(tmp_path, amqp_url, "body_timeout_s = 1.0\nbody_min_bytes_per_s = 200\n")
    body = sample_body("purchase_order", 3)
    async with running(config) as gateway:
        assert gateway.http_port is not None
        with anyio.fail_after(10):
            async with await connect(gateway.http_port) as stream:
                await stream.send(signed_post(ACME, body))
                started = time.monotonic()
                await send_at_rate(stream, body, 500)
                took = time.monotonic() - started
                answer = parse(await stream.receive())

    assert took > 1.5
    assert answer.status == 202


async def test_a_body_slower_than_the_minimum_rate_is_answered_408(
    tmp_path: Path, amqp_url: str
) -> None:
    config = edge_config(tmp_path, amqp_url, "body_timeout_s = 1.0\nbody_min_bytes_per_s = 200\n")
    body = sample_body("purchase_order", 4)
    async with running(config) as gateway:
        assert gateway.http_port is not None
        with anyio.fail_after(10):
            async with await connect(gateway.http_port) as stream:
                await stream.send(signed_post(ACME, body))
                async with anyio.create_task_group() as tg:
                    tg.start_soon(send_at_rate, stream, body, 50)  # would take ~19 s
                    answer = parse(await read_until_closed(stream))
                    tg.cancel_scope.cancel()

    assert answer.status == 408
    assert answer.problem()["type"] == "https://partner-gateway.dev/problems/request-timeout"


async def test_a_connection_answered_before_its_body_ended_is_closed_when_idle(
    tmp_path: Path, amqp_url: str
) -> None:
    # A 413 goes out on Content-Length alone; the rest of the body then arrives and the client
    # goes quiet. uvicorn's keep-alive timer was cancelled by that body: nothing closed it.
    config = edge_config(tmp_path, amqp_url, "keep_alive_s = 1.0\n")
    body = b"x" * (2 * 1024 * 1024)
    async with running(config) as gateway:
        assert gateway.http_port is not None
        with anyio.fail_after(10):
            async with await connect(gateway.http_port) as stream:
                await stream.send(signed_post(ACME, body))
                answer = parse(await stream.receive())
                await stream.send(body)
                received = await read_until_closed(stream)

    assert answer.status == 413
    assert received == b""


async def test_a_head_over_the_size_limit_is_answered_431_and_closed(
    tmp_path: Path, amqp_url: str
) -> None:
    async with running(edge_config(tmp_path, amqp_url)) as gateway:
        assert gateway.http_port is not None
        with anyio.fail_after(10):
            async with await connect(gateway.http_port) as stream:
                # 40 KiB of one header value, never ended: over the 32 KiB default.
                await stream.send(f"POST {PO} HTTP/1.1\r\nx-filler: ".encode() + b"a" * 40960)
                answer = parse(await read_until_closed(stream))

    assert answer.status == 431
    assert answer.problem()["type"] == (
        "https://partner-gateway.dev/problems/request-head-too-large"
    )
    assert answer.headers["connection"] == "close"


async def test_more_header_fields_than_the_limit_are_answered_431(
    tmp_path: Path, amqp_url: str
) -> None:
    body = sample_body("purchase_order", 5)
    headers = ACME.headers(body) | {f"x-extra-{n}": "1" for n in range(120)}
    async with running(edge_config(tmp_path, amqp_url)) as gateway:
        assert gateway.http_port is not None
        with anyio.fail_after(10):
            async with await connect(gateway.http_port) as stream:
                await stream.send(head("POST", PO, headers, content_length=len(body)) + body)
                answer = parse(await read_until_closed(stream))

    assert answer.status == 431
    assert "more than 100 header fields" in str(answer.problem()["detail"])


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def test_endless_header_values_are_cut_off_without_growing_memory(
    tmp_path: Path, amqp_url: str
) -> None:
    """20 connections each sending a 32 MiB webhook-signature: read ~32 KiB each, then closed."""
    chunk = b"v1," + b"A" * (1024 * 1024 - 3)
    prefix = b"POST " + PO.encode() + b" HTTP/1.1\r\nhost: gateway\r\nwebhook-signature: "

    def send_endless_header(port: int) -> int:
        """Bytes the kernel took before the server closed the connection."""
        sent = 0
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            try:
                sock.sendall(prefix)
                for _ in range(32):
                    sock.sendall(chunk)
                    sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass
        return sent

    sent: list[int] = []
    async with running(edge_config(tmp_path, amqp_url)) as gateway, client(gateway) as http:
        port = gateway.http_port
        assert port is not None
        before = rss_bytes()
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:

                async def one() -> None:
                    sent.append(await anyio.to_thread.run_sync(send_endless_header, port))

                for _ in range(20):
                    tg.start_soon(one)
        grown = rss_bytes() - before
        body = sample_body("purchase_order", 6)
        response = await http.post(PO, content=body, headers=ACME.headers(body))

    assert len(sent) == 20
    assert max(sent) < 32 * len(chunk)  # every one cut off before its header ended
    assert grown < 64 * 1024 * 1024  # 20 x 32 MiB was 839 MiB before the limit
    assert response.status_code == 202


async def test_garbage_is_answered_400_problem_json(tmp_path: Path, amqp_url: str) -> None:
    async with running(edge_config(tmp_path, amqp_url)) as gateway:
        assert gateway.http_port is not None
        with anyio.fail_after(10):
            async with await connect(gateway.http_port) as stream:
                await stream.send(b"NOT HTTP AT ALL\r\n\r\n")
                answer = parse(await read_until_closed(stream))

    assert answer.status == 400
    assert answer.problem()["type"] == "https://partner-gateway.dev/problems/bad-request"


async def test_requests_past_the_in_flight_limit_get_503_problem_json_with_retry_after(
    tmp_path: Path, amqp_url: str
) -> None:
    config = edge_config(tmp_path, amqp_url, "max_concurrent_requests = 1\n")
    body = sample_body("purchase_order", 7)
    async with running(config) as gateway, client(gateway) as http:
        assert gateway.http_port is not None
        with anyio.fail_after(10):
            # The one request in flight: its head is complete, its body never will be.
            async with await connect(gateway.http_port) as holder:
                await holder.send(signed_post(ACME, body) + body[:10])
                # Its task has started once an idle connection is answered 503.
                while (await http.get("/elsewhere")).status_code != 503:
                    await anyio.sleep(0.01)
                refused = await http.post(PO, content=body, headers=ACME.headers(body))

    assert refused.status_code == 503
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["type"] == "https://partner-gateway.dev/problems/server-busy"


async def test_idle_connections_do_not_count_as_requests_in_flight(
    tmp_path: Path, amqp_url: str
) -> None:
    config = edge_config(tmp_path, amqp_url, "max_concurrent_requests = 8\n")
    body = sample_body("purchase_order", 8)
    async with running(config) as gateway, client(gateway) as http:
        assert gateway.http_port is not None
        idle = [await connect(gateway.http_port) for _ in range(50)]
        try:
            response = await http.post(PO, content=body, headers=ACME.headers(body))
        finally:
            for stream in idle:
                await stream.aclose()

    assert response.status_code == 202


async def test_past_the_connection_ceiling_the_longest_idle_connection_makes_room(
    tmp_path: Path, amqp_url: str
) -> None:
    config = edge_config(tmp_path, amqp_url, "max_connections = 20\n")
    body = sample_body("purchase_order", 9)
    async with running(config) as gateway, client(gateway) as http:
        assert gateway.http_port is not None
        idle = [await connect(gateway.http_port) for _ in range(20)]
        try:
            with anyio.fail_after(HEAD_TIMEOUT / 2):
                response = await http.post(PO, content=body, headers=ACME.headers(body))
                oldest = await read_until_closed(idle[0])
            with anyio.move_on_after(0.2) as still_open:
                await idle[1].receive()
        finally:
            for stream in idle:
                await stream.aclose()

    assert response.status_code == 202
    assert oldest == b""
    assert still_open.cancelled_caught


async def test_an_endless_trailer_after_a_chunked_body_is_answered_431(
    tmp_path: Path, amqp_url: str
) -> None:
    # Trailers are a second head: httptools buffers a trailer value until it ends.
    body = sample_body("purchase_order", 10)
    headers = ACME.headers(body) | {"transfer-encoding": "chunked"}
    chunked = b"%x\r\n%s\r\n0\r\nx-trailer: " % (len(body), body)
    async with running(edge_config(tmp_path, amqp_url)) as gateway:
        assert gateway.http_port is not None
        with anyio.fail_after(10):
            async with await connect(gateway.http_port) as stream:
                await stream.send(head("POST", PO, headers) + chunked)
                for _ in range(8):  # 64 KiB of one trailer value, in reads of their own
                    await stream.send(b"t" * 8192)
                    await anyio.sleep(0.01)
                answer = parse(await read_until_closed(stream))

    assert answer.status == 431
    assert "trailer section exceeds 32768 bytes" in str(answer.problem()["detail"])
