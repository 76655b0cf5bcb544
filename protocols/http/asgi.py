"""ASGI type aliases and the one helper that writes a whole response.

ASGI all the way down, as starlette's `types.py` has it: no framework objects between the server
and our code, so the hot path allocates nothing it does not need.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

__all__ = ["ASGIApp", "Headers", "Message", "Receive", "Scope", "Send", "send_response"]

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
