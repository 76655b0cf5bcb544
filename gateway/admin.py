"""The admin listener: `/healthz` (alive), `/readyz` (ready to accept), `/metrics` (Prometheus).

A pure ASGI app on its own port, so probes and scrapes never queue behind partner traffic.
`guarded` puts it behind `protocols.http.admin_guard.ListenerGuard`: Host allow-list, no browser
origins, JSON bodies only, and the `[admin] token` on everything but the two probes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

import orjson
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from protocols.http.admin_guard import ListenerGuard
from protocols.http.asgi import ASGIApp, Receive, Scope, Send, send_response
from protocols.http.problem import RouteNotFound, problem_response

__all__ = ["PROBE_PATHS", "AdminApp", "ReadinessCheck", "guarded"]

# Answered without the token: an orchestrator's probes carry none (gateway/admin.py's guard).
PROBE_PATHS = ("/healthz", "/readyz")

ReadinessCheck = Callable[[], Awaitable[bool]]

_JSON = ((b"content-type", b"application/json"),)
_PROMETHEUS = ((b"content-type", CONTENT_TYPE_LATEST.encode("latin-1")),)


class AdminApp:
    """Serve health, readiness and metrics."""

    def __init__(
        self,
        registry: CollectorRegistry,
        checks: Mapping[str, ReadinessCheck],
        extra_routes: Mapping[str, Callable[[Scope, Receive, Send], Awaitable[None]]] | None = None,
    ) -> None:
        self.registry = registry
        self.checks = dict(checks)
        self.extra_routes = dict(extra_routes or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/healthz":
            await send_response(send, 200, _JSON, b'{"status":"alive"}')
        elif path == "/readyz":
            await self._ready(send)
        elif path == "/metrics":
            body = generate_latest(self.registry)
            await send_response(send, 200, _PROMETHEUS, body)
        elif (route := self._extra_route(path)) is not None:
            await route(scope, receive, send)
        else:
            status, headers, body = problem_response(
                RouteNotFound(f"no route {path[:80]}"), instance=path
            )
            await send_response(send, status, headers, body)

    def _extra_route(self, path: str) -> Callable[[Scope, Receive, Send], Awaitable[None]] | None:
        """Return the route for `path`: an exact key, or a key ending in "/" that it starts with."""
        if path in self.extra_routes:
            return self.extra_routes[path]
        for prefix, route in self.extra_routes.items():
            if prefix.endswith("/") and path.startswith(prefix):
                return route
        return None

    async def _ready(self, send: Send) -> None:
        results: dict[str, bool] = {}
        for name, check in self.checks.items():
            try:
                results[name] = await check()
            except Exception:
                results[name] = False
        ready = all(results.values())
        body = orjson.dumps({"status": "ready" if ready else "not ready", "checks": results})
        await send_response(send, 200 if ready else 503, _JSON, body)


def guarded(
    app: AdminApp,
    *,
    token: bytes | None,
    allowed_hosts: tuple[str, ...],
    console: ASGIApp | None = None,
) -> ASGIApp:
    """The admin app behind the listener guard; the probes stay open.

    `console` (gateway/console: pages for a browser, behind its own guard) answers `/console`.
    """
    api = ListenerGuard(app, allowed_hosts=allowed_hosts, token=token, open_paths=PROBE_PATHS)
    if console is None:
        return api
    console_app = console

    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if path == "/console" or path.startswith("/console/"):
            await console_app(scope, receive, send)
        else:
            await api(scope, receive, send)

    return route
