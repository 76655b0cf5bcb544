"""Re-timing armed timers when a supplier's deadlines change: how far each kind of timer moves.

Each timer's due time is a base the thread's state fixes plus one deadline setting: the
acknowledgement is due `ack_sla_hours` after the order reached the supplier, the ASN
`asn_lead_days` before the earliest requested date, the receipt `receipt_overdue_days` after
the expected delivery, a parked input's wait ends `park_hours` after it was parked. So when a
setting changes, an armed timer of that kind moves by the difference alone, whatever its base:
an order armed with a 48 h acknowledgement SLA and restarted under 24 h is due 24 h earlier.
The rule runs once per start, before any timer fires (gateway/workflow.py); a timer that the
new setting makes overdue fires at once, like any timer overdue on start.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from actors.workflow.inputs import TimerKind
from actors.workflow.state import decode_state, encode_state

__all__ = ["Deadlines", "decode_deadlines", "encode_deadlines", "retimed_state", "shifts"]

HOUR = 3600.0
DAY = 86400.0


class Deadlines(msgspec.Struct, frozen=True, kw_only=True):
    """The settings a supplier's armed timers were armed under (kept beside them in the store)."""

    ack_sla_hours: float
    asn_lead_days: int
    receipt_overdue_days: int
    park_hours: float


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Deadlines)


def encode_deadlines(deadlines: Deadlines) -> bytes:
    return _encoder.encode(deadlines)


def decode_deadlines(blob: bytes) -> Deadlines:
    return _decoder.decode(blob)


def shifts(old: Deadlines, new: Deadlines) -> dict[TimerKind, float]:
    """Seconds each kind of armed timer moves from `old` to `new` settings (moved kinds only)."""
    moved: dict[TimerKind, float] = {
        "acknowledgement_due": (new.ack_sla_hours - old.ack_sla_hours) * HOUR,
        # A longer lead makes the ASN due earlier.
        "shipment_due": (old.asn_lead_days - new.asn_lead_days) * DAY,
        "receipt_due": (new.receipt_overdue_days - old.receipt_overdue_days) * DAY,
        "park_expiry": (new.park_hours - old.park_hours) * HOUR,
    }
    return {kind: seconds for kind, seconds in moved.items() if seconds}


def retimed_state(blob: bytes, moves: Iterable[tuple[str, float]]) -> bytes:
    """A stored thread state with its timers' due times moved as the store moves their rows.

    The state keeps each armed timer's due time (a firing that does not match it is stale),
    so the rows and the state move together, in the store's one transaction.
    """
    state = decode_state(blob)
    timers = dict(state.timers)
    for kind, seconds in moves:
        if kind in timers:
            timers[kind] += seconds
    return encode_state(msgspec.structs.replace(state, timers=timers))
