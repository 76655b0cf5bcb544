"""One router and one problem+json mapping for every HTTP surface but the webhook ingress.

The customer API, the admin listener (health, metrics, contracts, operator, trace, console) and
the pull API each list starlette `Route`s in a `ProblemRouter`. Whatever goes wrong leaves as
RFC 9457 problem+json (protocols/http/problem.py), mapped here once: a `GatewayError` as it
says, the router's own 404 and 405 (with `Allow`), and a bug as a logged 500 whose `instance`
(a urn:uuid) is in the log line, never a traceback. A 401 carries `WWW-Authenticate: Bearer`.

A trailing slash is ignored (`/dead-letters/` is `/dead-letters`) rather than redirected. The
webhook ingress stays raw ASGI (protocols/http/ingress.py): it is the hot path.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import BaseRoute, Router

from canonical.errors import GatewayError
from canonical.ids import new_message_id

from .asgi import ClientDisconnected, Headers, Message, Receive, Scope, Send, send_response
from .problem import BadRequest, MethodNotAllowed, RouteNotFound, problem_response

__all__ = ["ProblemRouter", "json_response", "raw_response", "send_problem"]

logger = logging.getLogger(__name__)

_JSON = "application/json"


class ProblemRouter:
    """Route a request among `routes`; answer every error as problem+json."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self.routes = list(routes)
        self._router = Router(routes=self.routes, redirect_slashes=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if len(path) > 1 and path.endswith("/"):
            scope = {**scope, "path": path.rstrip("/") or "/"}
        # With "app" in the scope, starlette raises its 404 and 405 instead of answering them
        # in plain text, so they are mapped below like every other error.
        scope["app"] = self
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._router(scope, receive, sending)
        except ClientDisconnected:
            return
        except Exception as exc:
            if started:
                raise
            await send_problem(exc, scope["method"], path, send)


async def send_problem(exc: Exception, method: str, path: str, send: Send) -> None:
    """Answer `exc`, raised while serving `method path`, as problem+json."""
    error, instance = _as_gateway_error(exc, method, path)
    status, headers, body = problem_response(error, instance=instance)
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send_response(send, status, headers, body)


def _as_gateway_error(exc: Exception, method: str, path: str) -> tuple[GatewayError, str]:
    """The error to answer and the problem's `instance`: the path, or a logged urn for a bug."""
    if isinstance(exc, GatewayError):
        return exc, path
    if isinstance(exc, HTTPException):
        if exc.status_code == 404:
            return RouteNotFound(f"no route {path[:80]}"), path
        if exc.status_code == 405:
            # Sorted: starlette keeps a route's methods in a set, whose order varies by process.
            allow = sorted((exc.headers or {}).get("Allow", "").replace(" ", "").split(","))
            return MethodNotAllowed(f"{method} on {path[:80]}", allow=tuple(allow)), path
        if 400 <= exc.status_code < 500:
            return BadRequest(exc.detail), path
    instance = f"urn:uuid:{new_message_id()}"
    logger.error("unexpected error on %s %s (%s)", method, path[:80], instance, exc_info=exc)
    return GatewayError("unexpected error; it has been logged"), instance


def json_response(value: Any, status: int = 200) -> Response:
    """`value` as a JSON answer (orjson: `orjson.Fragment`s go out as they are)."""
    return Response(orjson.dumps(value), status, media_type=_JSON)


def raw_response(status: int, headers: Headers, body: bytes) -> Response:
    """An answer with exactly these headers (plus Content-Length)."""
    response = Response(body, status)
    response.raw_headers[:0] = headers
    return response
