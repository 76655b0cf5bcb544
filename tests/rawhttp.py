"""HTTP/1.1 over a bare socket, for tests that must send what no HTTP client would.

A slow head, a body short of its Content-Length, a head that never ends: the tests write the
bytes themselves and read the answer as it arrives, until the server closes the connection.
"""

from __future__ import annotations

import resource
from typing import NamedTuple

import anyio
import orjson
from anyio.abc import SocketStream
from gatewaykit import Partner


class Answer(NamedTuple):
    """One HTTP response as read off the wire."""

    status: int
    headers: dict[str, str]
    body: bytes

    def problem(self) -> dict[str, object]:
        """The problem+json body; fails the test if the answer is not problem+json."""
        assert self.headers.get("content-type") == "application/problem+json", self.headers
        problem: dict[str, object] = orjson.loads(self.body)
        assert problem["status"] == self.status
        return problem


def head(
    method: str, path: str, headers: dict[str, str], *, content_length: int | None = None
) -> bytes:
    """A request head with `headers` (and Content-Length when given), ending in a blank line."""
    lines = [f"{method} {path} HTTP/1.1", "host: gateway"]
    if content_length is not None:
        lines.append(f"content-length: {content_length}")
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def signed_post(partner: Partner, body: bytes, document: str = "purchase_order") -> bytes:
    """The head of a signed webhook POST of `body` (the body itself not included)."""
    path = f"/webhooks/{partner.id}/{document}"
    return head("POST", path, partner.headers(body), content_length=len(body))


async def connect(port: int) -> SocketStream:
    return await anyio.connect_tcp("127.0.0.1", port)


async def read_until_closed(stream: SocketStream) -> bytes:
    """Everything the server sends until it closes the connection (or resets it)."""
    received = bytearray()
    try:
        while True:
            received += await stream.receive()
    except (anyio.EndOfStream, anyio.BrokenResourceError):
        return bytes(received)


def parse(raw: bytes) -> Answer:
    """The first response in `raw` (Content-Length framed)."""
    head_bytes, _, rest = raw.partition(b"\r\n\r\n")
    status_line, *lines = head_bytes.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", len(rest)))
    return Answer(int(status_line.split()[1]), headers, rest[:length])


def raise_fd_limit(needed: int) -> None:
    """Let this process hold `needed` descriptors (tests hold both ends of every connection)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise AssertionError(f"RLIMIT_NOFILE hard limit {hard} is below the {needed} needed")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
