"""RFC 9457 problem+json: the one place that turns a `GatewayError` into an HTTP answer.

Every error class carries its `status`, `reason` and `title` (canonical/errors.py), so the mapping
is data. The problem `type` is `PROBLEM_TYPE_BASE + reason`, e.g.
`https://partner-gateway.dev/problems/signature-invalid`: one stable, absolute URI per reason
that partners can switch on (RFC 9457 section 3.1.1), under which the gateway's documentation
describes each problem. `about:blank` is not used because it would leave partners only the status
code, and 422 alone cannot tell an invalid document from a reused idempotency key.

Members: `type`, `title`, `status`, `detail`, `instance` when given, and the extension `errors`,
a list of `{path, message}`, when the error carries field errors (InvalidDocument). Errors with a
`retry_after` (RateLimited, StoreUnavailable) add a `Retry-After` header in whole seconds,
rounded up, so a partner never retries early.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec
import orjson

from canonical.errors import GatewayError

from .asgi import Headers

__all__ = [
    "MAX_INSTANCE_CHARS",
    "PROBLEM_CONTENT_TYPE",
    "PROBLEM_TYPE_BASE",
    "BadRequest",
    "MethodNotAllowed",
    "Problem",
    "ProblemFieldError",
    "RouteNotFound",
    "problem_response",
]

PROBLEM_TYPE_BASE = "https://partner-gateway.dev/problems/"
# `instance` is usually the request path, which a client chooses (up to the server's URL
# limit, 64 KB and more): the answer echoes only this much of it.
MAX_INSTANCE_CHARS = 256
PROBLEM_CONTENT_TYPE = b"application/problem+json"


class ProblemFieldError(msgspec.Struct, frozen=True, kw_only=True):
    """One field error of an `errors` member: a JSON path and what is wrong there."""

    path: str
    message: str


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """The shape of every problem+json answer, for the generated contracts (`problem_response`
    builds the bytes; a test holds the two together)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[ProblemFieldError] | None = None


# Errors that only exist in HTTP, so they live beside the mapping, not in canonical.
class BadRequest(GatewayError):
    """The request's headers, parameters or JSON body are not what the route takes."""

    status, reason, title = 400, "bad-request", "Bad request"


class RouteNotFound(GatewayError):
    """No route answers this path."""

    status, reason, title = 404, "not-found", "Not found"


class MethodNotAllowed(GatewayError):
    """The path exists but not for this method; `allow` lists the methods it has."""

    status, reason, title = 405, "method-not-allowed", "Method not allowed"

    def __init__(self, detail: str, *, allow: tuple[str, ...]) -> None:
        super().__init__(detail)
        self.allow = allow


def problem_response(
    error: GatewayError, *, instance: str | None
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Return (status, ASGI headers, body) answering `error` as application/problem+json.

    `instance` identifies this occurrence (RFC 9457 section 3.1.5), cut to
    `MAX_INSTANCE_CHARS`; None leaves it out. The
    headers hold Content-Type, and Retry-After or Allow where the error calls for them; the
    sender adds Content-Length.
    """
    problem: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + error.reason,
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
    }
    if instance is not None:
        problem["instance"] = instance[:MAX_INSTANCE_CHARS]
    if error.errors:
        problem["errors"] = [{"path": e.path, "message": e.message} for e in error.errors]
    headers: list[tuple[bytes, bytes]] = [(b"content-type", PROBLEM_CONTENT_TYPE)]
    headers.extend(_extra_headers(error))
    return error.status, headers, orjson.dumps(problem)


def _extra_headers(error: GatewayError) -> Headers:
    """Headers some errors add: Retry-After (seconds, rounded up) and Allow."""
    extra: list[tuple[bytes, bytes]] = []
    retry_after = getattr(error, "retry_after", None)
    # A non-finite value would be a bug upstream; answering without the header beats a 500.
    if isinstance(retry_after, int | float) and math.isfinite(retry_after):
        extra.append((b"retry-after", str(max(0, math.ceil(retry_after))).encode("ascii")))
    allow = getattr(error, "allow", None)
    if allow:
        extra.append((b"allow", ", ".join(allow).encode("ascii")))
    return extra
