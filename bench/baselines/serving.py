"""How every baseline is served: the one set of server settings the bench compares under.

uvicorn with httptools and uvloop (as the gateway is served), one process, loopback, the
listen backlog given, keep-alive 5 s, no access log. Each baseline parses its own options and
calls `serve`, so a setting changed here changes for all of them at once.
"""

from __future__ import annotations

import argparse
from typing import Any, Literal

__all__ = ["add_server_arguments", "serve"]


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --host, --port and --backlog, with the bench's defaults."""
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--backlog", type=int, default=2048)


def serve(
    app: Any,
    args: argparse.Namespace,
    *,
    lifespan: Literal["auto", "on", "off"] = "auto",
) -> None:
    """Serve `app` on `args.host:args.port` until interrupted."""
    import uvicorn

    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan=lifespan,
        access_log=False,
        log_level="warning",
        backlog=args.backlog,
        timeout_keep_alive=5,
    )
