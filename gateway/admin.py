"""The admin listener: `/healthz` (alive), `/readyz` (ready to accept), `/metrics` (Prometheus).

A pure ASGI app on its own port, so probes and scrapes never queue behind partner traffic.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

import orjson
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from protocols.http.asgi import Receive, Scope, Send, send_response

__all__ = ["AdminApp", "ReadinessCheck"]

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
            await send_response(send, 404, _JSON, b'{"status":"not found"}')

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
