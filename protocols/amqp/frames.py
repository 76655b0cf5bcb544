"""AMQP 0-9-1 wire encoding of one persistent, mandatory `basic.publish`, in one pass.

The relay publishes thousands of messages a second, and pamqp's general-purpose marshalling
(a Python object per frame, a property-by-property encoder, one socket write per message) cost
more than the rest of the relay together. Only this one frame shape is needed, so it is
encoded here straight into bytes; `tests/test_amqp_frames.py` checks the output byte for byte
against pamqp's for the same frames.

Layout (AMQP 0-9-1, section 4.2.3): each frame is `type:octet channel:short size:long payload
0xCE`. A publish is a method frame (Basic.Publish), a content header frame (class 60, body
size, property flags, properties), then body frames of at most `frame_max - 8` bytes.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Mapping

__all__ = ["encode_publish"]

FRAME_END = b"\xce"
_METHOD, _HEADER, _BODY = 1, 2, 3
_BASIC_PUBLISH = struct.pack(">HHH", 60, 40, 0)  # class, method, reserved ticket
_FRAME_HEAD = struct.Struct(">BHI")
_HEADER_HEAD = struct.Struct(">HHQH")  # class 60, weight 0, body size, property flags

# Basic property flags (AMQP 0-9-1 basic class), highest bit first.
_CONTENT_TYPE = 1 << 15
_HEADERS = 1 << 13
_DELIVERY_MODE = 1 << 12
_CORRELATION_ID = 1 << 10
_MESSAGE_ID = 1 << 7
_TIMESTAMP = 1 << 6
_TYPE = 1 << 5
_APP_ID = 1 << 3

_U32 = struct.Struct(">I").pack
_U64 = struct.Struct(">Q").pack
_I64 = struct.Struct(">q").pack
_FLAGS = (
    _CONTENT_TYPE
    | _HEADERS
    | _DELIVERY_MODE
    | _CORRELATION_ID
    | _MESSAGE_ID
    | _TIMESTAMP
    | _TYPE
    | _APP_ID
)


def _shortstr(value: str) -> bytes:
    raw = value.encode()
    if len(raw) > 255:
        raise ValueError(f"short string over 255 bytes: {value[:40]!r}...")
    return bytes((len(raw),)) + raw


# Exchanges, routing keys, types, app ids and header names repeat from message to message:
# encoded once each. Bounded, because routing keys grow with partners and document types.
_name = functools.lru_cache(maxsize=4096)(_shortstr)
_JSON = _shortstr("application/json")


def _table(fields: Mapping[str, str | int]) -> bytes:
    """A field table of strings ('S') and 64-bit integers ('l')."""
    parts = []
    for key, value in fields.items():
        if isinstance(value, str):
            raw = value.encode()
            parts.append(_name(key) + b"S" + _U32(len(raw)) + raw)
        else:
            parts.append(_name(key) + b"l" + _I64(value))
    table = b"".join(parts)
    return _U32(len(table)) + table


def _frame(kind: int, channel: int, payload: bytes) -> bytes:
    return _FRAME_HEAD.pack(kind, channel, len(payload)) + payload + FRAME_END


def encode_publish(
    *,
    channel: int,
    exchange: str,
    routing_key: str,
    body: bytes,
    message_id: str,
    correlation_id: str,
    message_type: str,
    timestamp: int,
    app_id: str,
    headers: Mapping[str, str | int],
    frame_max: int,
) -> bytes:
    """Return the frames of one persistent, mandatory JSON publish, ready for the socket.

    Raises `ValueError` for a message AMQP cannot carry: a short string over 255 bytes, a
    content header larger than one frame.
    """
    method = _BASIC_PUBLISH + _name(exchange) + _name(routing_key) + b"\x01"  # mandatory
    header = b"".join(
        (
            _HEADER_HEAD.pack(60, 0, len(body), _FLAGS),
            _JSON,
            _table(headers),
            b"\x02",  # delivery mode 2: persistent
            _shortstr(correlation_id),
            _shortstr(message_id),
            _U64(timestamp),
            _name(message_type),
            _name(app_id),
        )
    )
    chunk = frame_max - 8  # frame head (7) and end (1)
    if len(header) > chunk:
        # The content header cannot span frames: the broker would close the connection.
        raise ValueError(
            f"content header of {len(header)} bytes (properties and headers) exceeds the "
            f"frame size of {frame_max}"
        )
    if len(body) <= chunk:
        return b"".join(
            (
                _FRAME_HEAD.pack(_METHOD, channel, len(method)),
                method,
                FRAME_END,
                _FRAME_HEAD.pack(_HEADER, channel, len(header)),
                header,
                FRAME_END,
                _FRAME_HEAD.pack(_BODY, channel, len(body)) + body + FRAME_END if body else b"",
            )
        )
    parts = [_frame(_METHOD, channel, method), _frame(_HEADER, channel, header)]
    parts.extend(_frame(_BODY, channel, body[i : i + chunk]) for i in range(0, len(body), chunk))
    return b"".join(parts)
