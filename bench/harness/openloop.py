"""Open-loop load generator: signed purchase orders at a fixed rate, each one's times recorded.

Open loop: request i is due at t0 + i/rate whether or not earlier answers came back, so a slow
server cannot slow the offered load down (no coordinated omission). A due request waits for a
free keep-alive connection if all are busy, and its latency counts from when it was due. With
`--rate 0` every request is due at once: a closed loop over `--connections`, used to fill a
store quickly.

Runs as its own process so its CPU share shows on its own:

    python -m bench.harness.openloop --url http://127.0.0.1:8080 --input load.json \
        --rate 2000 --count 120000 --out step.npz

`--input` is the JSON `write_load_input` writes (run token, body template, partners). Prints a
progress line per second and a summary line (JSON) at the end; `--out` gets numpy arrays
`seq, due_ns, sent_ns, done_ns, status` (CLOCK_MONOTONIC, shared by every process on the
machine, so a consumer's receipt times compare with these directly). Status 0: no answer
(connection lost or still open when the drain time ran out).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hmac
import sys
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit

import msgspec
import numpy as np
import uvloop

from bench.harness.documents import SEQ_DIGITS, BenchPartner, OrderTemplate

__all__ = ["LoadInput", "SignedRequests", "main", "read_load_input", "write_load_input"]

#: How long the generator waits for answers after the last request was due.
DEFAULT_DRAIN_S = 10.0
#: How often due requests are released: uvloop keeps time in milliseconds, and a shorter
#: sleep rounds to zero and spins a core.
TICK_S = 0.001


class LoadInput(msgspec.Struct, frozen=True, kw_only=True):
    """What the generator needs to make requests: run token, order template, partners."""

    run: str
    head: bytes
    tail: bytes
    partners: list[tuple[str, str]]  # (id, whsec secret)
    document: str = "purchase_order"


def write_load_input(
    path: Path, *, run: str, template: OrderTemplate, partners: Sequence[BenchPartner]
) -> Path:
    """Write the generator's input file and return its path."""
    load = LoadInput(
        run=run,
        head=template.head,
        tail=template.tail,
        partners=[(p.id, p.secret) for p in partners],
    )
    path.write_bytes(msgspec.json.encode(load))
    return path


def read_load_input(path: Path) -> LoadInput:
    return msgspec.json.decode(path.read_bytes(), type=LoadInput)


class SignedRequests:
    """Makes request `i`: the order with sequence number `seq_start + i`, signed by its partner.

    Partners take turns by sequence number; every request has its own webhook-id.
    """

    def __init__(self, load: LoadInput, host: str, port: int, seq_start: int = 0) -> None:
        self.load = load
        self.seq_start = seq_start
        self.partners = [
            (
                f"/webhooks/{pid}/{load.document}".encode(),
                base64.b64decode(secret.removeprefix("whsec_")),
            )
            for pid, secret in load.partners
        ]
        self.host_header = f"Host: {host}:{port}\r\n".encode()
        self._ts_second = -1
        self._ts = b""

    def make(self, index: int) -> bytes:
        """Return the whole HTTP/1.1 request, headers and body."""
        seq = self.seq_start + index
        path, key = self.partners[seq % len(self.partners)]
        digits = b"%0*d" % (SEQ_DIGITS, seq)
        body = self.load.head + digits + self.load.tail
        now = int(time.time())
        if now != self._ts_second:
            self._ts_second, self._ts = now, str(now).encode()
        msg_id = b"msg_" + self.load.run.encode() + b"_" + digits
        signed = msg_id + b"." + self._ts + b"." + body
        signature = base64.b64encode(hmac.digest(key, signed, "sha256"))
        head = (
            b"POST %s HTTP/1.1\r\n%sContent-Type: application/json\r\nContent-Length: %d\r\n"
            b"webhook-id: %s\r\nwebhook-timestamp: %s\r\nwebhook-signature: v1,%s\r\n\r\n"
        ) % (path, self.host_header, len(body), msg_id, self._ts, signature)
        return head + body


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self, generator: _Generator) -> None:
        self.generator = generator
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.index = -1  # the request in flight, or -1

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP transport is not a subclass of asyncio.Transport, but is one in all but name.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.index >= 0:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).lower()
            length, start = 0, head.find(b"content-length:")
            if start >= 0:
                stop = head.find(b"\r\n", start)
                length = int(head[start + 15 : stop if stop >= 0 else len(head)])
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            del self.buffer[:total]
            index, self.index = self.index, -1
            self.generator.answered(self, index, int(head[9:12]))

    def connection_lost(self, exc: Exception | None) -> None:
        self.generator.lost(self)


class _Generator:
    def __init__(self, args: argparse.Namespace, load: LoadInput) -> None:
        url = urlsplit(args.url)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self.rate: float = args.rate
        self.count: int = args.count
        self.connections_wanted: int = args.connections
        self.drain_s: float = args.drain_s
        self.max_s: float | None = args.max_seconds
        self.requests = SignedRequests(load, self.host, self.port, args.seq_start)
        self.due = np.zeros(self.count, dtype=np.int64)
        self.sent = np.zeros(self.count, dtype=np.int64)
        self.done = np.zeros(self.count, dtype=np.int64)
        self.status = np.zeros(self.count, dtype=np.int16)
        self.pending: deque[int] = deque()
        self.idle: deque[_Connection] = deque()
        self.open = 0
        self.answers = self.ok = self.errors = 0

    def send(self, connection: _Connection, index: int) -> None:
        if connection.transport is None:
            raise RuntimeError("a connection was handed out before it was made")
        connection.index = index
        self.sent[index] = time.monotonic_ns()
        connection.transport.write(self.requests.make(index))

    def dispatch(self) -> None:
        while self.pending and self.idle:
            self.send(self.idle.popleft(), self.pending.popleft())

    def answered(self, connection: _Connection, index: int, status: int) -> None:
        self.done[index] = time.monotonic_ns()
        self.status[index] = status
        self.answers += 1
        if 200 <= status < 300:
            self.ok += 1
        else:
            self.errors += 1
        if self.pending:
            self.send(connection, self.pending.popleft())
        else:
            self.idle.append(connection)

    def lost(self, connection: _Connection) -> None:
        self.open -= 1
        if connection.index >= 0:
            self.done[connection.index] = time.monotonic_ns()
            self.answers += 1
            self.errors += 1
            connection.index = -1
        with contextlib.suppress(ValueError):
            self.idle.remove(connection)

    async def connect_missing(self) -> None:
        loop = asyncio.get_running_loop()
        while self.open < self.connections_wanted:
            try:
                _, connection = await loop.create_connection(
                    lambda: _Connection(self), self.host, self.port
                )
            except OSError:
                return
            self.open += 1
            self.idle.append(connection)

    def progress(self, t0: int, scheduled: int) -> dict[str, float]:
        return {
            "t": round((time.monotonic_ns() - t0) / 1e9, 3),
            "scheduled": scheduled,
            "answers": self.answers,
            "ok": self.ok,
            "errors": self.errors,
            "waiting": len(self.pending),
            "connections": self.open,
        }

    async def run(self) -> dict[str, float]:
        await self.connect_missing()
        t0 = time.monotonic_ns()
        scheduled = 0
        next_report = t0 + 1_000_000_000
        interval = 1e9 / self.rate if self.rate > 0 else 0.0
        # Hard bound: the schedule's own length, the drain, and a margin for a slow start.
        bound_s = self.max_s or (self.count / self.rate * 1.5 + 5 + self.drain_s)
        deadline = t0 + int(bound_s * 1e9)
        drain_until: int | None = None
        while self.answers < self.count:
            now = time.monotonic_ns()
            if now > deadline or (drain_until is not None and now > drain_until):
                break
            due = self.count if interval == 0 else min(self.count, int((now - t0) / interval) + 1)
            while scheduled < due:
                self.due[scheduled] = t0 + int(scheduled * interval)
                self.pending.append(scheduled)
                scheduled += 1
            if scheduled == self.count and drain_until is None:
                drain_until = now + int(self.drain_s * 1e9) if interval else deadline
            if self.open < self.connections_wanted:
                await self.connect_missing()
            self.dispatch()
            if now >= next_report:
                print(msgspec.json.encode(self.progress(t0, scheduled)).decode(), flush=True)
                next_report += 1_000_000_000
            await asyncio.sleep(TICK_S)
        return self.progress(t0, scheduled)


async def _main(args: argparse.Namespace) -> int:
    generator = _Generator(args, read_load_input(args.input))
    try:
        summary = await generator.run()
    finally:
        np.savez(
            args.out,
            seq=np.arange(args.count, dtype=np.int64) + args.seq_start,
            due_ns=generator.due,
            sent_ns=generator.sent,
            done_ns=generator.done,
            status=generator.status,
        )
    print(msgspec.json.encode({"summary": summary}).decode(), flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="http://127.0.0.1:PORT")
    parser.add_argument("--input", type=Path, required=True, help="write_load_input's file")
    parser.add_argument("--rate", type=float, required=True, help="requests/s; 0 = closed loop")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--seq-start", type=int, default=0)
    parser.add_argument("--connections", type=int, default=128)
    parser.add_argument("--drain-s", type=float, default=DEFAULT_DRAIN_S)
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        help="hard bound on the whole run (required with --rate 0)",
    )
    parser.add_argument("--out", type=Path, required=True, help="numpy .npz of per-request times")
    args = parser.parse_args(argv)
    if args.rate <= 0 and args.max_seconds is None:
        parser.error("--rate 0 (closed loop) needs --max-seconds")
    return uvloop.run(_main(args))


if __name__ == "__main__":
    sys.exit(main())
