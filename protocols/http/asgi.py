"""ASGI type aliases and the one helper that writes a whole response.

ASGI all the way down, as starlette's `types.py` has it: no framework objects between the server
and our code, so the hot path allocates nothing it does not need.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from canonical.errors import PayloadTooLarge

__all__ = [
    "ASGIApp",
    "ClientDisconnected",
    "Headers",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "read_body",
    "send_response",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Response headers as ASGI wants them: lower-case names, latin-1 bytes.
Headers = Sequence[tuple[bytes, bytes]]


async def send_response(send: Send, status: int, headers: Headers, body: bytes) -> None:
    """Send a complete response: status line, the headers plus Content-Length, then the body."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode("ascii"))],
        }
    )
    await send({"type": "http.response.body", "body": body})


class ClientDisconnected(Exception):
    """The client went away before its request body was complete."""


async def read_body(receive: Receive, limit: int) -> bytes:
    """Read the whole request body, refusing with 413 as soon as it grows past `limit` bytes.

    Raises `PayloadTooLarge` (and stops reading) past the limit, `ClientDisconnected` if the
    client leaves first. One chunk, the common case, is returned without copying.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnected
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body exceeds the limit of {limit} bytes")
        if not message.get("more_body", False):
            if not chunks:
                return chunk
            chunks.append(chunk)
            return b"".join(chunks)
        chunks.append(chunk)
