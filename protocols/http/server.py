"""Serve an ASGI app with uvicorn inside the running event loop, as a task with an owner.

`uvicorn.run()` would own the loop and the process's signals; here the composition root owns
both. `serve()` is meant for `await task_group.start(serve, app, host=..., port=...)`: it binds
the listening socket itself, so the port is known (and connectable) before `started()` is
reported, and port 0 reports the port the kernel chose. Cancelling the caller's scope is the
way to stop it: uvicorn is asked to exit (`should_exit`), stops accepting, lets requests in
flight finish for up to `shutdown_timeout` seconds, cancels what is left, and `serve()` returns.

Each listener enforces its `ListenerLimits` (guard.py): head and body deadlines, the head size,
requests in flight and connections, with problem+json refusals. uvicorn's own
`limit_concurrency` is off: it counts idle connections as if they were requests.
"""

from __future__ import annotations

import contextlib
import logging
import math
import resource
import socket
from collections.abc import Iterator
from typing import Any

import anyio
import msgspec
import uvicorn
from anyio.abc import TaskGroup, TaskStatus

from .asgi import ASGIApp
from .guard import ListenerLimits, guarded_protocol

__all__ = ["DEFAULT_SHUTDOWN_TIMEOUT", "FD_RESERVE", "serve"]

logger = logging.getLogger(__name__)

#: Seconds requests in flight get to finish once shutdown starts.
DEFAULT_SHUTDOWN_TIMEOUT = 10.0
#: File descriptors kept free for everything but client connections (store, broker, couriers,
#: the other listener): a connection ceiling above the process's limit minus these is lowered.
FD_RESERVE = 256
# Our hard stop comes this long after uvicorn's own deadline, so uvicorn gets to cancel its
# connection tasks itself (its shutdown also pauses 0.1 s before waiting).
_SHUTDOWN_MARGIN = 1.0

# Embedded defaults: the caller's options override them. No websockets, no lifespan (the
# composition root owns startup), no access log on the hot path, logging left to the process,
# no X-Forwarded-* rewriting (nothing here uses the client address), no Server banner, and no
# `limit_concurrency` (the guard bounds requests in flight and connections apart).
_EMBEDDED_OPTIONS: dict[str, Any] = {
    "limit_concurrency": None,
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
    limits: ListenerLimits = ListenerLimits(),  # noqa: B008 - frozen, shared safely
    **uvicorn_options: Any,
) -> None:
    """Serve `app` on host:port until cancelled; report the bound port through `task_status`.

    `limits` are the listener's bounds (guard.py). `uvicorn_options` go to `uvicorn.Config`
    (e.g. `backlog`, `timeout_keep_alive`) over the embedded defaults above. Raises OSError
    when the address cannot be bound, before anything is reported started.
    """
    limits = _within_fd_limit(limits, host, port)
    options = {"http": guarded_protocol(limits), **_EMBEDDED_OPTIONS, **uvicorn_options}
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


def _within_fd_limit(limits: ListenerLimits, host: str, port: int) -> ListenerLimits:
    """Return `limits` with a connection ceiling the process can open descriptors for.

    Past RLIMIT_NOFILE, accept() fails before the ceiling is reached, and then nothing closes
    idle connections to make room: the ceiling must be below it to hold.
    """
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or limits.max_connections <= soft - FD_RESERVE:
        return limits
    ceiling = max(1, soft - FD_RESERVE)
    logger.warning(
        "HTTP listener on %s:%d: max_connections %d lowered to %d: RLIMIT_NOFILE is %d and %d "
        "descriptors stay free for the rest of the gateway; raise the limit (LimitNOFILE=)",
        host,
        port,
        limits.max_connections,
        ceiling,
        soft,
        FD_RESERVE,
    )
    return msgspec.structs.replace(limits, max_connections=ceiling)


def _listen(host: str, port: int, backlog: int) -> socket.socket:
    """Return a socket bound to host:port and listening; IPv6 when the host is an IPv6 address."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=backlog)
