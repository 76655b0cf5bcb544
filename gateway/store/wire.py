"""What the gateway and its writer process say to each other over the child's stdin and stdout.

A frame is a 4-byte big-endian length and a payload. The parent's first frame is the set-up
(pickled `Setup`); every later one is a msgpack `Request`, and the child answers each with one
byte (`TAKEN`) as soon as it holds the whole request, then a frame with a pickled (ok, value).
Acceptances travel as typed msgpack, other writes as pickled `functools.partial`s of
`gateway.store.writer` functions. The pipe is private to the two.

A commit of large bodies is the biggest thing the gateway writes: the parent encodes it in one
pass (`CommitOut`, the acceptances themselves) into a buffer that starts with room for the
length (`framed`), so a batch exists once in the parent, not three times (each acceptance, the
commit around them, the length prepended). The child decodes each acceptance on its own, as
`Raw`, so one that does not decode fails alone.
"""

from __future__ import annotations

import pickle
import sqlite3
import struct
from collections.abc import Callable
from typing import Any, Literal, NamedTuple, Protocol

import msgspec

from canonical.outbox import Acceptance
from canonical.tracing import Tracer

__all__ = [
    "LENGTH",
    "TAKEN",
    "Commit",
    "CommitOut",
    "Flush",
    "FlushOutcome",
    "HostedRelay",
    "RelayFactory",
    "Request",
    "Setup",
    "Status",
    "TracerFactory",
    "decode_request",
    "encode",
    "frame",
    "framed",
    "pack_answer",
    "unpack_answer",
]

LENGTH = struct.Struct(">I")
TAKEN = b"\x01"

FlushOutcome = Literal["flushed", "pending", "unconnected"]
"""The outbox was seen empty; the time ran out first; no broker connection (nothing can go)."""


class HostedRelay(Protocol):
    """The relay the writer process runs beside the write connection, as the store sees it.

    The gateway builds it (`gateway.relay`); the store knows it by this shape alone, so
    persistence depends on no actor. `run` keeps it going until cancelled (restarting it after
    errors is its own business); `report` returns a picklable value the parent hands back
    unread through `Store.relay_report`.
    """

    async def run(self) -> None: ...

    def wake(self) -> None: ...

    async def flush(self, within_s: float) -> FlushOutcome: ...

    def report(self) -> Any: ...


RelayFactory = Callable[[Any, Tracer | None], HostedRelay]
"""Called in the writer process with its outbox source (`pending`, `mark_published`,
`mark_dead`: what `actors.relay.OutboxSource` asks for) and the process's tracer (None when
tracing is off); pickled to get there."""

TracerFactory = Callable[[], Tracer | None]
"""Called in the writer process to build its own tracer (`gateway.telemetry.tracer_factory`):
a tracer's export thread and connection cannot cross a pipe; its settings can."""


class Setup(NamedTuple):
    """The first frame: what the child runs beside the write connection, and how it logs."""

    relay: RelayFactory | None
    # Configures the child's logging (pickled); None: the stdlib's basic set-up at log_level.
    configure_logging: Callable[[], None] | None
    log_level: str
    # Builds the process's tracer (commit and relay publish spans); None: no tracing.
    tracer: TracerFactory | None = None


class Commit(msgspec.Struct, array_like=True, tag=0):
    """One group commit (`writer.commit_batch`)."""

    acceptances: list[msgspec.Raw]
    operations: list[bytes]
    now: float


class CommitOut(msgspec.Struct, array_like=True, tag=0):
    """`Commit` as the parent writes it: the same fields and bytes, the acceptances inline."""

    acceptances: list[Acceptance]
    operations: list[bytes]
    now: float


class Status(msgspec.Struct, array_like=True, tag=1):
    """Ask for the relay's report (`HostedRelay.report`; None without a relay)."""


class Flush(msgspec.Struct, array_like=True, tag=2):
    """Publish what is pending for up to `within_s` seconds; answered with a `FlushOutcome`."""

    within_s: float


Request = Commit | Status | Flush


encode = msgspec.msgpack.Encoder().encode
decode_request = msgspec.msgpack.Decoder(Request).decode


def frame(payload: bytes) -> bytes:
    return LENGTH.pack(len(payload)) + payload


_encoder = msgspec.msgpack.Encoder()


def framed(request: Request | CommitOut) -> bytearray:
    """Encode `request` as a frame, in one buffer: no copy of the payload to prepend its length.

    Raises what the encoder raises (TypeError, OverflowError) for a value msgpack cannot carry.
    """
    buffer = bytearray(LENGTH.size)
    _encoder.encode_into(request, buffer, LENGTH.size)
    LENGTH.pack_into(buffer, 0, len(buffer) - LENGTH.size)
    return buffer


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
