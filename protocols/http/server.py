"""Serve an ASGI app with uvicorn inside the running event loop, as a task with an owner.

`uvicorn.run()` would own the loop and the process's signals; here the composition root owns
both. `serve()` is meant for `await task_group.start(serve, app, host=..., port=...)`: it binds
the listening socket itself, so the port is known (and connectable) before `started()` is
reported, and port 0 reports the port the kernel chose. Cancelling the caller's scope is the
way to stop it: uvicorn is asked to exit (`should_exit`), stops accepting, lets requests in
flight finish for up to `shutdown_timeout` seconds, cancels what is left, and `serve()` returns.
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
from collections.abc import Iterator
from typing import Any

import anyio
import uvicorn
from anyio.abc import TaskGroup, TaskStatus

from .asgi import ASGIApp

__all__ = ["DEFAULT_LIMIT_CONCURRENCY", "DEFAULT_SHUTDOWN_TIMEOUT", "serve"]

logger = logging.getLogger(__name__)

#: Seconds requests in flight get to finish once shutdown starts.
DEFAULT_SHUTDOWN_TIMEOUT = 10.0
#: Connections plus requests in progress before uvicorn answers 503 at once; without a bound,
#: requests waiting on backpressure would pile up, each holding its body in memory.
DEFAULT_LIMIT_CONCURRENCY = 1024
# Our hard stop comes this long after uvicorn's own deadline, so uvicorn gets to cancel its
# connection tasks itself (its shutdown also pauses 0.1 s before waiting).
_SHUTDOWN_MARGIN = 1.0

# Embedded defaults: the caller's options override them. No websockets, no lifespan (the
# composition root owns startup), no access log on the hot path, logging left to the process,
# no X-Forwarded-* rewriting (nothing here uses the client address) and no Server banner.
_EMBEDDED_OPTIONS: dict[str, Any] = {
    "limit_concurrency": DEFAULT_LIMIT_CONCURRENCY,
    "http": "httptools",
    "loop": "none",
    "ws": "none",
    "lifespan": "off",
    "access_log": False,
    "log_config": None,
    "proxy_headers": False,
    "server_header": False,
}


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers: SIGINT/SIGTERM belong to the composition root."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(
    app: ASGIApp,
    *,
    host: str,
    port: int,
    task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
    **uvicorn_options: Any,
) -> None:
    """Serve `app` on host:port until cancelled; report the bound port through `task_status`.

    `uvicorn_options` go to `uvicorn.Config` (e.g. `limit_concurrency`, `backlog`,
    `timeout_keep_alive`) over the embedded defaults above. Raises OSError when the address
    cannot be bound, before anything is reported started.
    """
    options = {**_EMBEDDED_OPTIONS, **uvicorn_options}
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        timeout_graceful_shutdown=math.ceil(shutdown_timeout),
        **options,
    )
    config.load()  # configuration errors surface here, before started() is reported
    server = _EmbeddedServer(config)
    with _listen(host, port, config.backlog) as sock:
        bound_port: int = sock.getsockname()[1]
        async with anyio.create_task_group() as task_group:
            # uvicorn runs shielded: the caller's cancellation must reach it as a graceful
            # exit (below), not as a CancelledError in the middle of a response.
            uvicorn_scope = anyio.CancelScope(shield=True)
            task_group.start_soon(_run_uvicorn, server, sock, uvicorn_scope, task_group)
            logger.info("HTTP listener on %s:%d", host, bound_port)
            task_status.started(bound_port)
            try:
                await anyio.sleep_forever()
            finally:
                server.should_exit = True
                uvicorn_scope.deadline = anyio.current_time() + shutdown_timeout + _SHUTDOWN_MARGIN
        logger.info("HTTP listener on %s:%d closed", host, bound_port)


async def _run_uvicorn(
    server: uvicorn.Server,
    sock: socket.socket,
    scope: anyio.CancelScope,
    task_group: TaskGroup,
) -> None:
    """Run uvicorn on `sock` inside `scope`; when it stops by itself, end `serve()` too."""
    with scope:
        await server.serve(sockets=[sock])
    task_group.cancel_scope.cancel()


def _listen(host: str, port: int, backlog: int) -> socket.socket:
    """Return a socket bound to host:port and listening; IPv6 when the host is an IPv6 address."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=backlog)
