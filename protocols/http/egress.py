"""Outbound webhooks: a guarded, pooled HTTP client that POSTs Standard Webhooks messages.

The egress guard refuses targets whose address is not public (loopback, private, link-local,
cloud metadata at 169.254.169.254, unspecified, multicast, reserved) unless the caller names
the network as allowed, and IPv6 addresses that carry such an IPv4 address inside them and
reach it: IPv4-mapped (::ffff:127.0.0.1), 6to4 (2002:a9fe:a9fe::), Teredo (2001::/32, server
and client), NAT64 (64:ff9b::/96, when that network is allowed at all). The host is resolved once
and the connection goes to the address that was checked, with the Host header (and, for https,
the TLS server name) set to the original host: a DNS answer that changes between the check and
the connect (rebinding) cannot move the request elsewhere.

Transport only: what a status means for the delivery (retry, disable, dead letter) is decided
in one place, `gateway.outbound.webhook_outcome`. Redirects are not followed (a 3xx is an
answer like any other); proxies from the environment are not used.
"""

from __future__ import annotations

import email.utils
import ipaddress
import socket
import time
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

import anyio
import httpx
from msgspec import Struct

from canonical.errors import GatewayError
from protocols.http.redaction import redacted_repr
from protocols.http.signatures import sign

__all__ = [
    "DEFAULT_DRAIN_BYTES",
    "DEFAULT_KEEPALIVE_EXPIRY_S",
    "DEFAULT_MAX_CONNECTIONS",
    "LONGEST_RETRY_AFTER_S",
    "EgressClient",
    "EgressError",
    "EgressRefused",
    "IPAddress",
    "IPNetwork",
    "WebhookResponse",
    "WebhookTarget",
    "guard_address",
    "parse_retry_after",
    "resolve_target",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Connections the pool keeps across every partner; each partner's own concurrency is lower.
DEFAULT_MAX_CONNECTIONS = 256
DEFAULT_KEEPALIVE_EXPIRY_S = 30.0
# An answer's body is read (and dropped past the kept head) up to this, so a connection with a
# small body goes back to the pool; a bigger body closes the connection instead.
DEFAULT_DRAIN_BYTES = 64 * 1024
_USER_AGENT = "partner-gateway-webhooks/1"
# A Retry-After longer than this reads as this: the number stays finite whatever a partner
# sends (the courier caps it again, far lower, by the partner's `max_retry_after_s`).
LONGEST_RETRY_AFTER_S = 365 * 24 * 3600.0
# Delta-seconds with more digits than this are past LONGEST_RETRY_AFTER_S anyway.
_RETRY_AFTER_DIGITS = 12
# The NAT64 well-known prefix: the last 32 bits are the IPv4 address the translator reaches.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class EgressError(GatewayError):
    """No HTTP answer came from the partner: refused, unreachable, timed out, broken."""

    status, reason, title = 502, "egress-failed", "Partner endpoint unreachable"


class EgressRefused(EgressError):
    """The target's address is not public and its network is not allowed (SSRF guard)."""

    status, reason, title = 502, "egress-refused", "Partner endpoint address refused"


class WebhookTarget(Struct, frozen=True, kw_only=True):
    """One partner's endpoint and how to call it."""

    url: str
    secret_key: bytes
    timeout_s: float
    allow_networks: tuple[IPNetwork, ...] = ()
    response_head_bytes: int = 512

    def __repr__(self) -> str:
        return redacted_repr(self, ("secret_key",))


class WebhookResponse(Struct, frozen=True, kw_only=True):
    """The partner's answer: status, Retry-After in seconds (when given), first body bytes."""

    status: int
    retry_after_s: float | None
    head: bytes
    latency_s: float


def _is_public(ip: IPAddress) -> bool:
    # `is_global` alone lets multicast through (3.11); the others are spelt out for clarity.
    return ip.is_global and not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> Iterator[ipaddress.IPv4Address]:
    """Yield the IPv4 addresses that traffic to `ip` is carried to (6to4, Teredo, NAT64)."""
    if ip.sixtofour is not None:
        yield ip.sixtofour
    if ip.teredo is not None:
        yield from ip.teredo  # the relay server, and the client (de-obfuscated)
    if ip in _NAT64:
        yield ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)


def guard_address(address: str | IPAddress, allow: Sequence[IPNetwork] = ()) -> IPAddress:
    """Return the address to connect to; raise `EgressRefused` if it may not be reached.

    An IPv4-mapped IPv6 address is judged (and connected to) as the IPv4 address it carries.
    Any other IPv6 address that carries an IPv4 address it reaches (6to4, Teredo, NAT64) is
    refused unless both it and that IPv4 address would be let through on their own.
    """
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if not _reachable(ip, allow):
        raise EgressRefused(f"{address} is not a public address and its network is not allowed")
    if isinstance(ip, ipaddress.IPv6Address):
        for inner in _embedded_ipv4(ip):
            if not _reachable(inner, allow):
                raise EgressRefused(
                    f"{address} carries {inner}, which is not a public address and whose "
                    "network is not allowed"
                )
    return ip


def _reachable(ip: IPAddress, allow: Sequence[IPNetwork]) -> bool:
    return _is_public(ip) or any(ip.version == net.version and ip in net for net in allow)


async def resolve_target(host: str, port: int, allow: Sequence[IPNetwork] = ()) -> IPAddress:
    """Resolve `host` once; return its first address the guard lets through.

    Raises `EgressRefused` when every address is refused, `EgressError` when the name does not
    resolve (DNS errors are worth retrying: the caller's schedule does that).
    """
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise EgressError(f"cannot resolve {host}: {exc}") from exc
    refusal: EgressRefused | None = None
    for *_, sockaddr in infos:
        try:
            return guard_address(str(sockaddr[0]).partition("%")[0], allow)
        except EgressRefused as exc:
            refusal = refusal or exc
    raise refusal or EgressError(f"{host} resolved to no address")


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Return a Retry-After header's wait in seconds (delta-seconds or HTTP-date), else None.

    Whatever the partner sends, the answer is None or a number from 0 to
    LONGEST_RETRY_AFTER_S: never an error (a header is the partner's to get wrong, and one
    that raised here would fail every attempt before it is recorded). Only ASCII digits are
    delta-seconds (`str.isdigit` takes "²" too); a date in the past is 0.
    """
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        if len(value) > _RETRY_AFTER_DIGITS:
            return LONGEST_RETRY_AFTER_S
        return min(float(value), LONGEST_RETRY_AFTER_S)
    try:
        wait = email.utils.parsedate_to_datetime(value).timestamp() - now
    except (TypeError, ValueError, OverflowError, OSError, IndexError):
        # Not a date, or one outside what datetime (or the platform's clock) can hold.
        return None
    return min(max(0.0, wait), LONGEST_RETRY_AFTER_S)


class EgressClient:
    """A keep-alive connection pool for webhook POSTs, used as `async with`."""

    def __init__(
        self,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        keepalive_expiry_s: float = DEFAULT_KEEPALIVE_EXPIRY_S,
        drain_bytes: int = DEFAULT_DRAIN_BYTES,
    ) -> None:
        self._limits = httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=keepalive_expiry_s,
        )
        self._drain_bytes = drain_bytes
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Self:
        self._client = httpx.AsyncClient(
            limits=self._limits, follow_redirects=False, trust_env=False
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        client, self._client = self._client, None
        if client is not None:
            with anyio.CancelScope(shield=True):
                await client.aclose()

    async def post_webhook(
        self,
        target: WebhookTarget,
        message_id: str,
        body: bytes,
        *,
        timestamp: int,
        traceparent: str | None = None,
    ) -> WebhookResponse:
        """POST one signed message; return the answer whatever its status.

        `traceparent` (W3C Trace Context, this hop's) is sent as is when given.

        Raises `EgressRefused` (address not allowed: nothing was sent) or `EgressError` (no
        answer within `target.timeout_s`, or the connection failed).
        """
        if self._client is None:
            raise EgressError("the egress client is closed")
        parts = urlsplit(target.url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        ip = await resolve_target(host, port, target.allow_networks)
        literal = f"[{ip}]" if ip.version == 6 else str(ip)
        url = parts._replace(netloc=f"{literal}:{port}").geturl()
        headers = {
            "host": parts.netloc,
            "content-type": "application/json",
            "user-agent": _USER_AGENT,
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(target.secret_key, message_id, timestamp, body),
        }
        if traceparent is not None:
            headers["traceparent"] = traceparent
        extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
        started = time.perf_counter()
        try:
            with anyio.fail_after(target.timeout_s):
                return await self._post(
                    self._client, url, body, headers, extensions, target, started
                )
        except TimeoutError as exc:
            raise EgressError(f"no answer within {target.timeout_s:g} s") from exc
        except (httpx.HTTPError, OSError) as exc:
            raise EgressError(f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc

    async def _post(
        self,
        client: httpx.AsyncClient,
        url: str,
        body: bytes,
        headers: dict[str, str],
        extensions: dict[str, str],
        target: WebhookTarget,
        started: float,
    ) -> WebhookResponse:
        timeout = httpx.Timeout(target.timeout_s)
        request = client.build_request(
            "POST", url, content=body, headers=headers, timeout=timeout, extensions=extensions
        )
        response = await client.send(request, stream=True)
        try:
            head = bytearray()
            read = 0
            async for chunk in response.aiter_bytes():
                read += len(chunk)
                if len(head) < target.response_head_bytes:
                    head += chunk[: target.response_head_bytes - len(head)]
                if read >= self._drain_bytes:
                    break
        finally:
            await response.aclose()
        return WebhookResponse(
            status=response.status_code,
            retry_after_s=parse_retry_after(response.headers.get("retry-after"), now=time.time()),
            head=bytes(head),
            latency_s=time.perf_counter() - started,
        )
