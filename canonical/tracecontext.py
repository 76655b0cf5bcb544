"""W3C Trace Context `traceparent`: validate what arrives, continue it with a new span id.

The gateway carries the trace across systems. A `traceparent` that comes in with a webhook or
an ERP message is kept in the envelope, set as an AMQP header on the published message, and sent
on the way out (outbound webhook) with a new parent id (this hop's span) and the same trace id,
so the partner's and the ERP's traces join up. When tracing is configured (`canonical.tracing`)
the gateway also records spans: the envelope then keeps the ingress span's `traceparent`, and
an outbound call made inside a span (`next_hop`) names that span as its parent.

A value that is not a valid `traceparent` is ignored, never refused: Trace Context says a
receiver that cannot parse one restarts the trace, and a partner's document must not fail for
a tracing header.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import msgspec

__all__ = [
    "TRACEPARENT_LENGTH",
    "child_traceparent",
    "new_traceparent",
    "next_hop",
    "parse_traceparent",
    "traceparent_of",
]

# `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`: the version 00 form, and the prefix
# of every later version (which may append `-...` fields this gateway does not know).
TRACEPARENT_LENGTH = 55
# All-zero ids are invalid: the lookaheads refuse them within the match.
_IDS = rb"-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}"
_VERSION_00 = re.compile(rb"00" + _IDS)
_ANY_VERSION = re.compile(rb"([0-9a-f]{2})" + _IDS)
# Longer values are refused before anything looks at them: a header is bounded where it enters.
_MAX_LENGTH = 512


def parse_traceparent(raw: bytes | str | None) -> str | None:
    """Return `raw` as a version 00 `traceparent`, or None when it is absent or invalid.

    Rules (Trace Context level 1, section 3.2): lowercase hex only; version `ff` is invalid;
    an all-zero trace id or parent id is invalid; version 00 is exactly 55 characters; a later
    version is read by its first 55 characters if the next one is `-` (forward compatible)
    and passed on as version 00, the only one this gateway writes.
    """
    if not raw:
        return None
    # A non-ASCII character becomes "?", which no valid value holds: never an exception.
    value = raw.encode("ascii", "replace") if isinstance(raw, str) else raw
    if _VERSION_00.fullmatch(value):  # what nearly every sender sends: one C-level match
        return value.decode("ascii")
    if len(value) > _MAX_LENGTH:
        return None
    value = value.strip(b" \t")
    found = _ANY_VERSION.match(value)
    if found is None or found[1] == b"ff":
        return None
    if len(value) != TRACEPARENT_LENGTH and (found[1] == b"00" or value[55:56] != b"-"):
        return None
    return "00" + value[2:TRACEPARENT_LENGTH].decode("ascii")


# The span this task is in (set by `next_hop`): the parent the next hop names. Unset without
# a tracer, so `child_traceparent` then costs one `get` more than before.
_HOP: ContextVar[str | None] = ContextVar("traceparent_hop", default=None)


@contextmanager
def next_hop(span_traceparent: str) -> Iterator[None]:
    """In the block, `child_traceparent` of the same trace names this span as the parent."""
    token = _HOP.set(span_traceparent)
    try:
        yield
    finally:
        _HOP.reset(token)


def child_traceparent(traceparent: str) -> str:
    """Return the `traceparent` of the next hop: the same trace id and flags, a new parent id.

    The new parent id is the recorded span the call is made in (`next_hop`), when there is one
    of this trace, else a random one (a span nobody records: the trace still joins up).
    `traceparent` must be valid (as `parse_traceparent` returns it).
    """
    hop = _HOP.get()
    if hop is not None and hop[3:35] == traceparent[3:35]:
        return hop
    return f"{traceparent[:36]}{_random_id(8)}{traceparent[52:TRACEPARENT_LENGTH]}"


def new_traceparent() -> str:
    """Return the `traceparent` of a new trace (sampled): for what starts one, such as a file.

    Its parent id stands for the thing itself (the file), which no span records.
    """
    return f"00-{_random_id(16)}-{_random_id(8)}-01"


def _random_id(size: int) -> str:
    """A random trace id (16 bytes) or parent id (8), in hex; never all zeros (invalid)."""
    found = os.urandom(size).hex()
    while not found.strip("0"):  # one chance in 2**64 at least
        found = os.urandom(size).hex()
    return found


class _Traced(msgspec.Struct):
    """The one envelope field `traceparent_of` reads; every other field is skipped."""

    traceparent: str | None = None


_TRACED = msgspec.json.Decoder(_Traced)
# The envelope encodes `traceparent` last: a message without one ends with the first tail, a
# message with one with the second around its 55 characters. A quote inside a JSON string is
# escaped, so these bytes at the very end can only be the envelope's own last field.
_UNTRACED_TAIL = b'"traceparent":null}'
_TRACED_HEAD = b',"traceparent":"'
_TRACED_TAIL = b'"}'
_TRACED_LENGTH = len(_TRACED_HEAD) + TRACEPARENT_LENGTH + len(_TRACED_TAIL)
_FIELD = b'"traceparent"'


def traceparent_of(envelope_json: bytes) -> str | None:
    """Return the `traceparent` kept in an encoded envelope, or None.

    For the publisher and the webhook channel, which hold the envelope as bytes and must not
    decode the document to set a header: a message without a trace costs one `endswith`, one
    with a trace a slice and `parse_traceparent`. Only an envelope encoded some other way (its
    fields in another order) is decoded, skipping everything but this field.
    """
    if envelope_json.endswith(_UNTRACED_TAIL):
        return None
    tail = envelope_json[-_TRACED_LENGTH:]
    if tail.startswith(_TRACED_HEAD) and tail.endswith(_TRACED_TAIL):
        return parse_traceparent(tail[len(_TRACED_HEAD) : -len(_TRACED_TAIL)])
    if _FIELD not in envelope_json:
        return None
    try:
        return parse_traceparent(_TRACED.decode(envelope_json).traceparent)
    except msgspec.DecodeError:
        return None
