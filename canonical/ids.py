"""Message ids: UUIDv7 (RFC 9562), time-ordered so ids sort roughly by creation."""

from __future__ import annotations

import os
import time
import uuid

__all__ = ["new_message_id"]


def new_message_id() -> str:
    """Return a new UUIDv7 as a 36-character string."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | rand
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 9562 variant
    return str(uuid.UUID(int=value))
