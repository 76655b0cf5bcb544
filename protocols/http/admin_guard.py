"""A guard for a listener meant for operators' tools, never for browsers: the admin listener.

Four checks, in this order, each answered with problem+json before the app sees the request:

1. `Host` must be an IP literal, `localhost`, or one of `allowed_hosts` (else 421). A DNS
   rebinding page reaches a loopback listener under the attacker's own name (`Host:
   evil.example:9090`), and its script may then read every answer as same-origin; no
   operator's tool needs a name the operator did not list.
2. A request with an `Origin` header is refused (403). Browsers send it on every cross-origin
   request and on every POST; curl, Prometheus and orchestrator probes do not. A cross-site
   form or `fetch(..., {mode: "no-cors"})` never reaches the app.
3. With a token, `Authorization: Bearer <token>` must carry it (401), compared in constant time.
4. A request that sends a body (POST, PUT, PATCH) must say `Content-Type: application/json`
   (415): a browser sends `text/plain` cross-site without a preflight, never JSON.

Paths in `open_paths` (health probes) skip every check for GET and HEAD: they answer only
"alive" or "ready" with the names of the readiness checks, and an orchestrator probing them by
IP, by a service name or through a sidecar must not need the token.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Collection, Iterable

from canonical.errors import GatewayError, UnsupportedMediaType

from .asgi import ASGIApp, Receive, Scope, Send, send_response
from .problem import problem_response
from .routing import Forbidden, Unauthenticated, bearer

__all__ = ["ListenerGuard", "MisdirectedRequest", "is_loopback"]

_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
_PROBE_METHODS = frozenset({"GET", "HEAD"})


class MisdirectedRequest(GatewayError):
    """The request names a host this listener does not serve."""

    status, reason, title = 421, "misdirected-request", "Not served under this host name"


def is_loopback(host: str) -> bool:
    """Return True for `localhost` and loopback IP literals (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ListenerGuard:
    """Refuse what a browser or a stranger would send, then hand the request to `app`."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        allowed_hosts: Iterable[str] = (),
        token: bytes | None = None,
        open_paths: Collection[str] = (),
    ) -> None:
        self._app = app
        self._hosts = frozenset(h.lower() for h in allowed_hosts) | {"localhost"}
        self._token = token
        self._open_paths = frozenset(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self._refusal(scope)
            if refusal is not None:
                status, headers, body = problem_response(refusal, instance=scope["path"])
                if status == 401:
                    headers.append((b"www-authenticate", b"Bearer"))
                await send_response(send, status, headers, body)
                return
        await self._app(scope, receive, send)

    def _refusal(self, scope: Scope) -> GatewayError | None:
        method: str = scope["method"]
        if scope["path"] in self._open_paths and method in _PROBE_METHODS:
            return None
        headers = _headers(scope)
        host = headers.get(b"host")
        if host is not None and not self.host_allowed(host):
            return MisdirectedRequest(
                f"host {host[:80].decode('latin-1')!r} is not served here; "
                "list it in [admin] allowed_hosts"
            )
        if b"origin" in headers:
            return Forbidden("cross-origin requests are refused: this listener is for tools")
        if self._token is not None:
            given = bearer(headers.get(b"authorization"))
            # compare_digest runs over the whole given token whatever its length.
            if given is None or not hmac.compare_digest(given, self._token):
                return Unauthenticated("send Authorization: Bearer <the [admin] token>")
        if method in _WITH_BODY and not _is_json(headers.get(b"content-type")):
            return UnsupportedMediaType(f"{method} takes Content-Type: application/json")
        return None

    def host_allowed(self, raw: bytes) -> bool:
        """Return True when a `Host` header names this listener (rule 1 above)."""
        host = _host_name(raw.decode("latin-1"))
        if host in self._hosts:
            return True
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return False
        # An IP literal is no DNS name: no rebinding page can be served under it.
        return True


def _headers(scope: Scope) -> dict[bytes, bytes]:
    """The request's headers by lower-case name; the first of a repeated one wins."""
    found: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        found.setdefault(name, value)
    return found


def _host_name(host: str) -> str:
    """`Host` without its port, lower-case, an IPv6 literal without its brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    name, _, port = host.rpartition(":")
    return name if name and port.isdigit() else host


def _is_json(value: bytes | None) -> bool:
    if value is None:
        return False
    media_type = value.split(b";", 1)[0].strip().lower()
    return media_type == b"application/json"
