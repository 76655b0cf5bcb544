"""A partner's webhook endpoint for the bench: answers every POST with 200 at once, or never.

`--mode ok` answers 200 as soon as the body is read; `--mode hang` reads the body and then
waits for the caller to give up (the gateway's per-partner timeout closes the connection), the
way a stuck partner behaves. Either way, for every call it notes CLOCK_MONOTONIC and the
sequence number of the bench order in the body (`BPO-<seq>`, -1 if none) and appends the pair
to `--out` as two little-endian int64s, flushed every 100 ms: the same file format as the
sink consumer's, read with `bench.harness.consumer.read_receipts`. No signature check: the
endpoint must cost the machine as little as possible; the gateway's signing is tested elsewhere.

    python -m bench.harness.partner_endpoint --port 8001 --mode ok --out healthy.bin

Served by the gateway's own embedded uvicorn (`protocols.http.server.serve`), on loopback only.
Runs until SIGTERM/SIGINT or `--max-seconds`.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from array import array
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import anyio

from bench.harness.documents import PO_NUMBER_PATTERN
from protocols.http.asgi import Receive, Scope, Send
from protocols.http.server import serve

__all__ = ["Endpoint", "main"]

HOST = "127.0.0.1"
FLUSH_EVERY_S = 0.1
#: Far more than any scenario needs; the harness stops the process long before.
MAX_RUN_S = 4 * 3600.0
#: Seconds calls in flight get once the endpoint is told to stop (hanging ones never finish).
SHUTDOWN_S = 1.0
#: Calls held at once; a hanging endpoint holds one per connection the gateway opens.
MAX_CONNECTIONS = 4096
_OK_HEADERS = [(b"content-type", b"text/plain"), (b"content-length", b"2")]


class Endpoint:
    """The ASGI app: records each call's arrival, then answers 200 or waits for a disconnect."""

    def __init__(self, hang: bool) -> None:
        self.hang = hang
        self.pending = array("q")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        now = time.monotonic_ns()
        found = PO_NUMBER_PATTERN.search(body)
        self.pending.append(int(found.group(1)) if found else -1)
        self.pending.append(now)
        if self.hang:
            # The body is read: the next message is the disconnect, when the caller gives up.
            while (await receive())["type"] != "http.disconnect":
                pass
            return
        await send({"type": "http.response.start", "status": 200, "headers": _OK_HEADERS})
        await send({"type": "http.response.body", "body": b"ok"})

    def flush(self, out: Path) -> None:
        if self.pending:
            with out.open("ab") as f:
                f.write(self.pending.tobytes())
            del self.pending[:]


async def run(port: int, hang: bool, out: Path, max_seconds: float) -> None:
    """Serve the endpoint on loopback until signalled or `max_seconds` pass; flush as it goes."""
    endpoint = Endpoint(hang)
    try:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with anyio.create_task_group() as tg:
                await tg.start(
                    partial(
                        serve,
                        endpoint,
                        host=HOST,
                        port=port,
                        shutdown_timeout=SHUTDOWN_S,
                        limit_concurrency=MAX_CONNECTIONS,
                    )
                )
                print("listening", flush=True)

                async def stop_on_signal() -> None:
                    async for _ in signals:
                        tg.cancel_scope.cancel()

                tg.start_soon(stop_on_signal)
                with anyio.move_on_after(max_seconds):
                    while True:
                        await anyio.sleep(FLUSH_EVERY_S)
                        endpoint.flush(out)
                tg.cancel_scope.cancel()
    finally:
        endpoint.flush(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=("ok", "hang"), default="ok")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-seconds", type=float, default=MAX_RUN_S)
    args = parser.parse_args(argv)
    args.out.write_bytes(b"")
    anyio.run(
        run,
        args.port,
        args.mode == "hang",
        args.out,
        args.max_seconds,
        backend_options={"use_uvloop": True},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
