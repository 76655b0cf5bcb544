"""What acknowledgements say, as data: element and segment notes, set and group outcomes, TA1.

The reader fills these; `acks.py` writes them as 997, 999 or TA1 segments and `inbound_acks.py`
reads a partner's 997/999 back into them, so both directions share one vocabulary. Codes are
X12's own (FIELD-NOTES "X12"): AK3 segment codes 1-8, AK4 element codes 1-10, AK5 set codes,
AK9 group codes, TA1 notes.
"""

from __future__ import annotations

from typing import Literal

from msgspec import Struct

__all__ = [
    "ElementNote",
    "GroupOutcome",
    "InterchangeKey",
    "SegmentNote",
    "SetOutcome",
    "Ta1",
]


class ElementNote(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """AK4/IK4: one bad element of a segment."""

    position: int  # the element's position in its segment
    code: str  # 1 mandatory missing, 4 too short, 6 invalid character, 7 invalid code, 8 date ...
    component: int | None = None  # the component's position in a composite
    reference: str | None = None  # the data element reference number, when known
    data: str | None = None  # a copy of the bad data (at most 99 characters)
    detail: str | None = None  # what a person reads (not sent in the ack)


class SegmentNote(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """AK3/IK3: one segment in error, with its elements in error."""

    segment_id: str
    position: int  # counted from the set's ST = 1
    code: str  # 1 unrecognized, 2 unexpected, 3 mandatory missing, ... 8 has element errors
    loop_id: str | None = None
    elements: tuple[ElementNote, ...] = ()
    file_segment: int | None = None  # the segment's position in the file, ISA = 1
    detail: str | None = None


class SetOutcome(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """AK2..AK5 for one transaction set: accepted, or rejected with why."""

    set_id: str  # ST01
    control_number: str  # ST02
    accepted: bool
    codes: tuple[str, ...] = ()  # AK5 codes: 1 not supported, 2 trailer missing, 3, 4, 5 ...
    notes: tuple[SegmentNote, ...] = ()
    implementation: str | None = None  # ST03, echoed by a 999


class GroupOutcome(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """AK1..AK9 for one functional group."""

    functional_id: str  # GS01
    control_number: str  # GS06
    version: str  # GS08
    sets: tuple[SetOutcome, ...] = ()
    received: int = 0  # sets received (AK903)
    codes: tuple[str, ...] = ()  # AK9 group codes: 3 trailer missing, 4 GE02, 5 GE01 ...
    declared: str | None = None  # AK901 as a partner's 997 states it (None: ours, computed)

    @property
    def status(self) -> str:
        """AK901: accepted, partially accepted, or rejected (a partner's: as it says)."""
        if self.declared is not None:
            return self.declared
        accepted = sum(1 for s in self.sets if s.accepted)
        if self.codes or not accepted:
            return "R"
        return "A" if accepted == len(self.sets) else "P"

    @property
    def accepted(self) -> int:
        return 0 if self.codes else sum(1 for s in self.sets if s.accepted)


class Ta1(Struct, frozen=True, kw_only=True):
    """TA1: the answer to an interchange envelope."""

    control_number: str  # the inbound ISA13
    date: str  # the inbound ISA09 (YYMMDD)
    time: str  # the inbound ISA10 (HHMM)
    status: Literal["A", "E", "R"]
    note: str  # 000 no error, 001 ISA13 != IEA02, 021 group count, 025 duplicate ...


class InterchangeKey(Struct, frozen=True, kw_only=True):
    """What makes an interchange unique: its sender, its receiver and its control number.

    The store keeps the keys it has accepted within a window; a key seen again is a replay,
    answered with `duplicate_ta1` (TA1 note 025) and nothing behind it read.
    """

    sender_qualifier: str  # ISA05
    sender_id: str  # ISA06, trailing spaces removed
    receiver_qualifier: str  # ISA07
    receiver_id: str  # ISA08, trailing spaces removed
    control_number: str  # ISA13
