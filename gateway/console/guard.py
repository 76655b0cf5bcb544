"""The console's guard: the admin listener's rules, adapted for a browser that logs in once.

The admin API's guard (protocols/http/admin_guard.py) refuses every request with an `Origin`
and wants `Authorization: Bearer`: right for tools, impossible for pages. Under `/console` this
guard applies instead, in this order:

1. `Host` must be allowed, exactly as on the rest of the listener (421): DNS rebinding.
2. A request from another site is refused (403): an `Origin` that is not this very host, or a
   `Sec-Fetch-Site` other than `same-origin`/`none`.
3. With an `[admin] token`, a session cookie must be live (pages answer 303 to the login form,
   the rest 401). The login form posts the token once (compared in constant time; a client
   address past `login_failures` wrong tokens a minute gets 429 for the rest of it); the answer
   sets `gw_console`: random, `HttpOnly` (no script reads it), `SameSite=Strict` (no other
   site's request carries it), `Path=/console`, and it expires after `session_ttl_s`.
4. Every POST but the login must be `Content-Type: application/json` (415) and carry
   `X-Console-CSRF` with the session's token (403): a form on another site can do neither.

Without a token the console is as open as the admin API is, and steps 2 and 4 still hold.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from urllib.parse import parse_qsl

from canonical.errors import GatewayError, RateLimited, UnsupportedMediaType
from gateway.console.html import esc
from protocols.http.admin_guard import ListenerGuard, MisdirectedRequest
from protocols.http.asgi import ASGIApp, Receive, Scope, Send, read_body, send_response
from protocols.http.problem import problem_response
from protocols.http.routing import Forbidden, Unauthenticated

__all__ = [
    "COOKIE",
    "CSRF_HEADER",
    "DEFAULT_MAX_SESSIONS",
    "DEFAULT_SESSION_TTL_S",
    "ConsoleGuard",
]

COOKIE = "gw_console"
CSRF_HEADER = b"x-console-csrf"
# A session lasts a working day; the oldest goes first when this many are live.
DEFAULT_SESSION_TTL_S = 12 * 3600.0
DEFAULT_MAX_SESSIONS = 256
# The login form holds one token: anything longer is not a login.
MAX_LOGIN_BODY = 4096
# Wrong tokens a client address may try per window before its logins are refused (429) for
# the rest of it: guessing a token gets slow, an operator's typo does not lock anybody out.
DEFAULT_LOGIN_FAILURES = 10
LOGIN_WINDOW_S = 60.0
# Client addresses whose failures are remembered; the oldest is forgotten first.
MAX_TRACKED_CLIENTS = 1024
# Paths answered without a session: the login form and the static assets it needs.
_OPEN = ("/console/login", "/console/static/")
_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class ConsoleGuard:
    """Check a console request (see the module docstring), then hand it to `app`.

    The app finds the session's CSRF token in `scope["console.csrf"]` to put in its pages.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: bytes | None,
        allowed_hosts: tuple[str, ...],
        session_ttl_s: float = DEFAULT_SESSION_TTL_S,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        login_failures: int = DEFAULT_LOGIN_FAILURES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._app = app
        self._token = token
        # Only its Host rule is used: one rule in one place for the whole listener.
        self._hosts = ListenerGuard(app, allowed_hosts=allowed_hosts)
        self._ttl = session_ttl_s
        self._max = max_sessions
        self._clock = clock
        self._sessions: OrderedDict[str, float] = OrderedDict()  # id -> expiry
        self._login_failures = login_failures
        # client address -> (window start, failures in it)
        self._failures: OrderedDict[str, tuple[float, int]] = OrderedDict()
        # Keys the CSRF tokens: a token is HMAC(key, session), so it needs no storage.
        self._csrf_key = secrets.token_bytes(32)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = _headers(scope)
        path: str = scope["path"]
        method: str = scope["method"]
        try:
            self._check_site(headers)
            if path == "/console/login":
                await self._login(scope, receive, send, headers)
                return
            session = self._session(headers)
            if not path.startswith(_OPEN[1]) and self._token is not None and session is None:
                if method == "GET" and not path.startswith("/console/api/"):
                    await _redirect(send, "/console/login")
                    return
                raise Unauthenticated("log in at /console/login")
            csrf = self._csrf(session)
            if method in _WITH_BODY:
                _check_json(headers, method)
                given = headers.get(CSRF_HEADER, b"")
                if not hmac.compare_digest(given, csrf.encode()):
                    raise Forbidden(f"POST needs the page's {CSRF_HEADER.decode()} header")
                if path == "/console/logout":
                    self._sessions.pop(session or "", None)
                    await _redirect(send, "/console/login", cookie=_cookie("", scope, 0))
                    return
        except GatewayError as error:
            status, out, body = problem_response(error, instance=path)
            await send_response(send, status, out, body)
            return
        await self._app({**scope, "console.csrf": csrf}, receive, send)

    def _check_site(self, headers: dict[bytes, bytes]) -> None:
        host = headers.get(b"host")
        if host is not None and not self._hosts.host_allowed(host):
            raise MisdirectedRequest("this host name is not served here: [admin] allowed_hosts")
        origin = headers.get(b"origin")
        if origin is not None and host is not None:
            if origin not in (b"http://" + host, b"https://" + host):
                raise Forbidden("cross-origin requests are refused")
        elif origin is not None:
            raise Forbidden("cross-origin requests are refused")
        site = headers.get(b"sec-fetch-site")
        if site is not None and site not in (b"same-origin", b"none"):
            raise Forbidden("requests from another site are refused")

    async def _login(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes]
    ) -> None:
        if scope["method"] == "GET":
            await _login_page(send, 200, "")
            return
        if scope["method"] != "POST":
            await _login_page(send, 405, "use the form")
            return
        media = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
        if media != b"application/x-www-form-urlencoded":
            raise UnsupportedMediaType("the login form posts application/x-www-form-urlencoded")
        client = str((scope.get("client") or ("?", 0))[0])
        started, failed = self._failures.get(client, (self._clock(), 0))
        if self._clock() - started > LOGIN_WINDOW_S:
            started, failed = self._clock(), 0
        if failed >= self._login_failures:
            retry = LOGIN_WINDOW_S - (self._clock() - started)
            raise RateLimited("too many wrong tokens: wait and try again", retry_after=retry)
        body = await read_body(receive, MAX_LOGIN_BODY)
        given = dict(parse_qsl(body.decode("latin-1"))).get("token", "").encode("latin-1")
        if self._token is not None and not hmac.compare_digest(given, self._token):
            self._failures[client] = (started, failed + 1)
            self._failures.move_to_end(client)
            while len(self._failures) > MAX_TRACKED_CLIENTS:
                self._failures.popitem(last=False)
            await _login_page(send, 401, "That is not the admin token.")
            return
        session = self._new_session()
        await _redirect(send, "/console/", cookie=_cookie(session, scope, self._ttl))

    def _new_session(self) -> str:
        now = self._clock()
        while self._sessions and (
            len(self._sessions) >= self._max or next(iter(self._sessions.values())) < now
        ):
            self._sessions.popitem(last=False)
        session = secrets.token_urlsafe(32)
        self._sessions[session] = now + self._ttl
        return session

    def _session(self, headers: dict[bytes, bytes]) -> str | None:
        raw = headers.get(b"cookie")
        if raw is None:
            return None
        for part in raw.decode("latin-1").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE:
                expires = self._sessions.get(value)
                if expires is not None and expires > self._clock():
                    return value
        return None

    def _csrf(self, session: str | None) -> str:
        return hmac.new(self._csrf_key, (session or "-").encode(), hashlib.sha256).hexdigest()


def _check_json(headers: dict[bytes, bytes], method: str) -> None:
    media = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
    if media != b"application/json":
        raise UnsupportedMediaType(f"{method} takes Content-Type: application/json")


def _cookie(session: str, scope: Scope, ttl_s: float) -> bytes:
    secure = "; Secure" if scope.get("scheme") == "https" else ""
    return (
        f"{COOKIE}={session}; Path=/console; HttpOnly; SameSite=Strict; "
        f"Max-Age={int(ttl_s)}{secure}"
    ).encode()


async def _redirect(send: Send, location: str, *, cookie: bytes | None = None) -> None:
    headers: list[tuple[bytes, bytes]] = [
        (b"location", location.encode()),
        (b"cache-control", b"no-store"),
    ]
    if cookie is not None:
        headers.append((b"set-cookie", cookie))
    await send_response(send, 303, headers, b"")


_LOGIN = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Log in - partner-gateway</title>
<link rel="stylesheet" href="/console/static/console.css"></head>
<body class="login"><main><h1>partner-gateway console</h1>
<form method="post" action="/console/login">
<label>Admin token <input type="password" name="token" id="token" autocomplete="off"
autofocus></label><button type="submit">Log in</button></form>
<p class="error">{error}</p></main></body></html>"""


async def _login_page(send: Send, status: int, error: str) -> None:
    body = _LOGIN.format(error=esc(error)).encode()
    await send_response(send, status, SECURITY_HEADERS, body)


SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-type", b"text/html; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
        b"frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
)


def _headers(scope: Scope) -> dict[bytes, bytes]:
    found: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        found.setdefault(name, value)
    return found
