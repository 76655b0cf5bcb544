"""The HTTP ceiling: an ASGI app that reads the body, decodes it with msgspec, and answers 202.

No signature, no validation, no store, no broker: whatever the gateway does on top of this costs
throughput, so "gateway / ceiling" is the share of the server's raw speed the gateway keeps.
Served by uvicorn (httptools + uvloop, as the gateway is) or by granian, one worker each.

    python -m bench.baselines.http_ceiling --port 8000 [--server granian]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import msgspec

from bench.baselines.serving import add_server_arguments, serve

__all__ = ["app", "main"]

_ACCEPTED = b'{"status":"accepted"}'
_INVALID = b'{"status":"invalid"}'
_HEADERS = [(b"content-type", b"application/json")]
_decoder = msgspec.json.Decoder()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answer every request with 202 once its body decodes as JSON (400 if it does not)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    try:
        _decoder.decode(b"".join(chunks))
        status, body = 202, _ACCEPTED
    except msgspec.DecodeError:
        status, body = 400, _INVALID
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*_HEADERS, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_server_arguments(parser)
    parser.add_argument("--server", choices=("uvicorn", "granian"), default="uvicorn")
    args = parser.parse_args(argv)
    if args.server == "granian":
        # granian's own CLI: it forks its worker and manages it; exec keeps one process group.
        return subprocess.call(
            [
                sys.executable,
                "-m",
                "granian",
                "--interface",
                "asgi",
                "--loop",
                "uvloop",
                "--http",
                "1",
                "--workers",
                "1",
                "--no-ws",
                "--backlog",
                str(args.backlog),
                "--host",
                args.host,
                "--port",
                str(args.port),
                "--log-level",
                "warning",
                "bench.baselines.http_ceiling:app",
            ]
        )
    serve(app, args, lifespan="on")
    return 0


if __name__ == "__main__":
    sys.exit(main())
