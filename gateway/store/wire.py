"""What the gateway and its writer process say to each other over the child's stdin and stdout.

A frame is a 4-byte big-endian length and a payload. The parent's first frame is the set-up
(pickled `Setup`); every later one is a msgpack `Request`, and the child answers each with one
byte (`TAKEN`) as soon as it holds the whole request, then a frame with a pickled (ok, value).
Acceptances travel as typed msgpack (each encoded on its own, ~0.2 us), other writes as pickled
`functools.partial`s of `gateway.store.writer` functions. The pipe is private to the two.
"""

from __future__ import annotations

import pickle
import sqlite3
import struct
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import msgspec

from actors.relay import OutboxRelay, OutboxSource, RelayStatistics
from gateway.metrics import LatencyTally

__all__ = [
    "LENGTH",
    "TAKEN",
    "Commit",
    "Flush",
    "FlushOutcome",
    "RelayFactory",
    "RelayReport",
    "Request",
    "Setup",
    "Status",
    "decode_request",
    "encode",
    "frame",
    "pack_answer",
    "unpack_answer",
]

LENGTH = struct.Struct(">I")
TAKEN = b"\x01"

RelayFactory = Callable[[OutboxSource, Callable[[float], None]], OutboxRelay]
"""Builds the relay in the writer process from its outbox source and confirm-latency sink."""


class Setup(NamedTuple):
    """The first frame: what the child runs beside the write connection, and how it logs."""

    relay: RelayFactory | None
    log_level: str


class Commit(msgspec.Struct, array_like=True, tag=0):
    """One group commit (`writer.commit_batch`)."""

    acceptances: list[msgspec.Raw]
    operations: list[bytes]
    now: float


class Status(msgspec.Struct, array_like=True, tag=1):
    """Ask for the relay's `RelayReport` (None without a relay)."""


class Flush(msgspec.Struct, array_like=True, tag=2):
    """Publish what is pending for up to `within_s` seconds; answered with a `FlushOutcome`."""

    within_s: float


FlushOutcome = Literal["flushed", "pending", "unconnected"]
"""The outbox was seen empty; the time ran out first; no broker connection (nothing can go)."""


Request = Commit | Status | Flush


class RelayReport(NamedTuple):
    """The relay's state as the writer process last reported it."""

    statistics: RelayStatistics
    confirm_latency: LatencyTally
    # The last error that stopped the relay (it is restarted), or None.
    error: str | None


encode = msgspec.msgpack.Encoder().encode
decode_request = msgspec.msgpack.Decoder(Request).decode


def frame(payload: bytes) -> bytes:
    return LENGTH.pack(len(payload)) + payload


def pack_answer(ok: bool, value: object) -> bytes:
    """A framed answer; one that does not pickle becomes an error the parent can read."""
    try:
        payload = pickle.dumps((ok, value), pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        error = sqlite3.OperationalError(f"the writer's answer does not pickle: {exc}")
        payload = pickle.dumps((False, error), pickle.HIGHEST_PROTOCOL)
    return frame(payload)


def unpack_answer(payload: bytes) -> Any:
    """Return an answer's value, or raise the error it carries."""
    try:
        ok, value = pickle.loads(payload)
    except Exception as exc:
        raise sqlite3.OperationalError(f"unreadable answer from the writer process: {exc}") from exc
    if not ok:
        raise value
    return value
