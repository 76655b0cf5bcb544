"""What reading one X12 file gives: the decoding for the intake, and a report for people.

`X12Reading` is what `decode_file` returns; its report types (`InterchangeReport` down to
`SetReport`, and every `X12Problem` with its segment and element) are what
`gateway edi inspect` prints as JSON.
"""

from __future__ import annotations

from msgspec import Struct

from canonical.documents import Document
from canonical.files import FileDecoding
from canonical.x12.acks import PendingAck
from canonical.x12.envelope import GroupHeader, InterchangeHeader
from canonical.x12.notes import GroupOutcome, InterchangeKey, SegmentNote
from canonical.x12.profile import X12Profile

__all__ = ["GroupReport", "InterchangeReport", "SetReport", "X12Problem", "X12Reading"]


class X12Problem(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One error, where it is: file segment and element, and the envelope it sits in."""

    code: str | None  # the X12 code: a TA1 note, an AK9/AK5 code, an AK3/AK4 code
    detail: str
    segment: int | None = None  # in the file, ISA = 1
    element: int | None = None
    interchange: str | None = None
    group: str | None = None
    transaction_set: str | None = None


class SetReport(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One set as read: its outcome and the documents it became."""

    set_id: str
    control_number: str
    segment: int  # its ST in the file
    accepted: bool
    codes: tuple[str, ...] = ()
    notes: tuple[SegmentNote, ...] = ()
    documents: tuple[Document, ...] = ()


class GroupReport(Struct, frozen=True, kw_only=True, omit_defaults=True):
    header: GroupHeader
    status: str  # AK901: A, P or R
    codes: tuple[str, ...] = ()
    sets: tuple[SetReport, ...] = ()
    acknowledges: GroupOutcome | None = None  # for a 997/999 received: what it says


class InterchangeReport(Struct, frozen=True, kw_only=True, omit_defaults=True):
    header: InterchangeHeader
    key: InterchangeKey
    note: str  # TA1 note: 000 when the envelope is sound
    detail: str | None = None
    groups: tuple[GroupReport, ...] = ()


class X12Reading(Struct, frozen=True, kw_only=True):
    """What one file said, for the intake (`decoding`, `keys`, `acknowledgements`) and people."""

    decoding: FileDecoding
    interchanges: tuple[InterchangeReport, ...] = ()
    keys: tuple[InterchangeKey, ...] = ()
    acknowledgements: tuple[PendingAck, ...] = ()
    functional_acks: tuple[GroupOutcome, ...] = ()  # 997/999 received: answers to our sends
    problems: tuple[X12Problem, ...] = ()
    profile: X12Profile = X12Profile()

    @property
    def accepted(self) -> bool:
        """True when the file was read whole and every set became documents."""
        return self.decoding.refused is None and not self.problems

    @property
    def control_numbers_needed(self) -> tuple[int, int]:
        """(ISA13s, GS06s) `render_acknowledgements` uses, consecutively from the first."""
        return len(self.acknowledgements), sum(len(a.groups) for a in self.acknowledgements)
