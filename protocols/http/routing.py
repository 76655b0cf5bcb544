"""Small routing pieces: mount apps by path prefix, read a bearer token, an id, a JSON body.

The webhook ingress checks its own route inline (it is the hot path); the slower listeners route
with a `ProblemRouter` (protocols/http/router.py) and share these.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from canonical.errors import GatewayError

from .asgi import ASGIApp, ClientDisconnected, Receive, Scope, Send, read_body, send_response
from .problem import BadRequest, RouteNotFound, problem_response

__all__ = [
    "DEFAULT_MAX_JSON_BODY_BYTES",
    "MAX_ID",
    "BadRequest",
    "Forbidden",
    "NotFound",
    "PrefixRouter",
    "Unauthenticated",
    "bearer",
    "natural",
    "read_json",
]

# A request body these APIs take is a few ids or filters: anything larger is a mistake.
DEFAULT_MAX_JSON_BODY_BYTES = 64 * 1024

# Ids and cursors are SQLite INTEGERs, signed 64-bit: a larger one names no row, and SQLite
# would refuse to bind it (OverflowError) deep inside the store.
MAX_ID = 2**63 - 1


class Unauthenticated(GatewayError):
    """No credentials, or credentials that belong to no one."""

    status, reason, title = 401, "unauthenticated", "Missing or invalid credentials"


class Forbidden(GatewayError):
    """Valid credentials, but not for this resource."""

    status, reason, title = 403, "forbidden", "Not allowed for these credentials"


class NotFound(GatewayError):
    """The resource named in the path does not exist."""

    status, reason, title = 404, "not-found", "Not found"


class PrefixRouter:
    """Dispatch each request to the first app whose path prefix matches; 404 problem otherwise."""

    def __init__(self, routes: Sequence[tuple[str, ASGIApp]]) -> None:
        self._routes = tuple(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            # Lifespan and websockets: the first app decides (the ingress declines them).
            if self._routes:
                await self._routes[0][1](scope, receive, send)
            return
        path: str = scope["path"]
        for prefix, app in self._routes:
            if path.startswith(prefix):
                await app(scope, receive, send)
                return
        status, headers, body = problem_response(
            RouteNotFound(f"no route {path[:80]}"), instance=path
        )
        await send_response(send, status, headers, body)


def bearer(authorization: bytes | None) -> bytes | None:
    """Return the token of an `Authorization: Bearer <token>` value, or None."""
    if authorization is None:
        return None
    scheme, _, token = authorization.partition(b" ")
    token = token.strip()
    return token if scheme.lower() == b"bearer" and token else None


def natural(text: str, name: str) -> int:
    """Return `text` as an integer from 0 to `MAX_ID`; 400 naming the parameter otherwise.

    ASCII digits only: `str.isdigit` also takes "²" and other digits `int()` refuses.
    """
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(MAX_ID)):
        raise BadRequest(f"{name}: expected an integer from 0 to {MAX_ID}, got {text[:40]!r}")
    value = int(text)
    if value > MAX_ID:
        raise BadRequest(f"{name}: expected an integer from 0 to {MAX_ID}, got {text[:40]!r}")
    return value


async def read_json(receive: Receive, limit: int = DEFAULT_MAX_JSON_BODY_BYTES) -> Any:
    """Read the whole request body (at most `limit` bytes) and decode it as JSON."""
    try:
        body = await read_body(receive, limit)
    except ClientDisconnected:
        raise BadRequest("the client went away before the body was complete") from None
    if not body:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"body is not JSON: {exc}") from None
