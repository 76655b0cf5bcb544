"""Segments to envelopes: interchanges of groups of sets, each checked apart from its contents.

Checks (FIELD-NOTES "X12"): ISA13 = IEA02 (TA1 note 001) and IEA01 counts the groups (021);
GS06 = GE02 (AK9 code 4) and GE01 counts the sets (5); ST02 = SE02 (AK5 code 3) and SE01
counts ST..SE (4); a trailer missing is AK9 3 / AK5 2. An interchange with a TA1 note other
than 000 is rejected whole: nothing behind its envelope is read. A group at fault has every set
rejected; a set at fault is rejected alone.
"""

from __future__ import annotations

import re

from msgspec import Struct

from canonical.x12.notes import InterchangeKey
from canonical.x12.syntax import Delimiters, RawInterchange, Segment

__all__ = [
    "GroupBlock",
    "GroupHeader",
    "InterchangeBlock",
    "InterchangeHeader",
    "SetBlock",
    "read_envelope",
]

_NUMBER = re.compile(r"[0-9]{1,9}\Z")
_ISA13 = re.compile(r"[0-9]{9}\Z")
_SET_ID = re.compile(r"[0-9]{3}\Z")
_SET_CONTROL = re.compile(r"[A-Za-z0-9]{4,9}\Z")


class InterchangeHeader(Struct, frozen=True, kw_only=True):
    """The ISA, its fields named and the padding of the ids removed."""

    sender_qualifier: str
    sender_id: str
    receiver_qualifier: str
    receiver_id: str
    date: str  # YYMMDD
    time: str  # HHMM
    version: str  # ISA12
    control_number: str  # ISA13
    ack_requested: str  # ISA14
    usage: str  # ISA15

    @property
    def key(self) -> InterchangeKey:
        return InterchangeKey(
            sender_qualifier=self.sender_qualifier,
            sender_id=self.sender_id,
            receiver_qualifier=self.receiver_qualifier,
            receiver_id=self.receiver_id,
            control_number=self.control_number,
        )


class GroupHeader(Struct, frozen=True, kw_only=True):
    """The GS, its fields named."""

    functional_id: str  # GS01: PO, PR, SH, IN, IB, PC, FA
    application_sender: str  # GS02
    application_receiver: str  # GS03
    date: str  # GS04
    time: str  # GS05
    control_number: str  # GS06
    agency: str  # GS07
    version: str  # GS08


class SetBlock(Struct, kw_only=True):
    """One transaction set: ST..SE (or what came before its trailer went missing)."""

    set_id: str
    control_number: str
    implementation: str | None
    segments: list[Segment]  # ST first; SE last when present
    codes: list[str]  # AK5 codes the envelope found


class GroupBlock(Struct, kw_only=True):
    """One functional group and its sets."""

    header: GroupHeader
    gs: Segment
    sets: list[SetBlock]
    codes: list[str]  # AK9 codes the envelope found


class InterchangeBlock(Struct, kw_only=True):
    """One interchange, its groups, and its TA1 note ("000" when the envelope is sound)."""

    header: InterchangeHeader
    delimiters: Delimiters
    isa: Segment
    groups: list[GroupBlock]
    note: str = "000"
    detail: str | None = None  # why the note is not 000
    position: int | None = None  # the segment the note is about, in the file

    @property
    def has_transactions(self) -> bool:
        return any(group.sets for group in self.groups)


def read_envelope(raw: RawInterchange) -> InterchangeBlock:
    """Group an interchange's segments into groups and sets, and run the envelope checks."""
    isa = raw.segments[0]
    header = _interchange_header(isa)
    block = InterchangeBlock(header=header, delimiters=raw.delimiters, isa=isa, groups=[])
    note = _isa_note(header)
    if note is not None:
        _fault(block, note[0], note[1], isa)
    body = list(raw.segments[1:])
    iea = body.pop() if body and body[-1].tag == "IEA" else None
    _Grouper(block).run(body)
    if raw.fault is not None:
        _fault(block, raw.fault.code or "023", raw.fault.detail, None, raw.fault.segment)
    elif iea is None:
        _fault(block, "023", "the interchange has no IEA", None)
    else:
        if iea.element(2) != header.control_number:
            _fault(block, "001", f"IEA02 {iea.element(2)!r} is not ISA13", iea)
        if iea.element(1) != str(len(block.groups)):
            detail = f"IEA01 {iea.element(1)!r} but {len(block.groups)} groups"
            _fault(block, "021", detail, iea)
    return block


def _fault(
    block: InterchangeBlock,
    note: str,
    detail: str,
    segment: Segment | None,
    position: int | None = None,
) -> None:
    # The first fault is the one a TA1 carries.
    if block.note == "000":
        block.note, block.detail = note, detail
        block.position = segment.position if segment is not None else position


def _interchange_header(isa: Segment) -> InterchangeHeader:
    return InterchangeHeader(
        sender_qualifier=isa.element(5),
        sender_id=isa.element(6).rstrip(" "),
        receiver_qualifier=isa.element(7),
        receiver_id=isa.element(8).rstrip(" "),
        date=isa.element(9),
        time=isa.element(10),
        version=isa.element(12),
        control_number=isa.element(13),
        ack_requested=isa.element(14),
        usage=isa.element(15),
    )


def _isa_note(header: InterchangeHeader) -> tuple[str, str] | None:
    if not _ISA13.match(header.control_number):
        return "018", f"ISA13 {header.control_number!r} is not 9 digits"
    if not re.fullmatch(r"[0-9]{5}", header.version):
        return "017", f"ISA12 {header.version!r} is not a version"
    if header.ack_requested not in ("0", "1"):
        return "019", f"ISA14 {header.ack_requested!r} is not 0 or 1"
    if header.usage not in ("P", "T", "I"):
        return "020", f"ISA15 {header.usage!r} is not P, T or I"
    if not re.fullmatch(r"[0-9]{6}", header.date):
        return "014", f"ISA09 {header.date!r} is not YYMMDD"
    if not re.fullmatch(r"[0-9]{4}", header.time):
        return "015", f"ISA10 {header.time!r} is not HHMM"
    return None


class _Grouper:
    """Walks the segments between ISA and IEA: GS (ST .. SE)* GE, repeated."""

    def __init__(self, block: InterchangeBlock) -> None:
        self.block = block
        self.group: GroupBlock | None = None
        self.set: SetBlock | None = None
        self.set_controls: set[str] = set()  # ST02s of the open group: a set, not a scan

    def run(self, segments: list[Segment]) -> None:
        for segment in segments:
            self.take(segment)
        if self.set is not None:
            self.end_set(None)
        if self.group is not None:
            self.end_group(None)

    def take(self, segment: Segment) -> None:
        tag = segment.tag
        if self.set is not None:
            if tag == "SE":
                self.set.segments.append(segment)
                self.end_set(segment)
                return
            if tag not in ("ST", "GE", "GS", "IEA", "ISA"):
                self.set.segments.append(segment)
                return
            self.end_set(None)
        if tag == "ST" and self.group is not None:
            self.start_set(segment)
        elif tag == "GE" and self.group is not None:
            self.end_group(segment)
        elif tag == "GS":
            if self.group is not None:
                self.end_group(None)
            self.start_group(segment)
        elif tag == "TA1" and self.group is None and not self.block.groups:
            pass  # an interchange acknowledgement from the partner: nothing to answer
        else:
            where = "outside a group" if self.group is None else "outside a set"
            _fault(self.block, "024", f"segment {tag!r} {where}", segment)

    def start_group(self, gs: Segment) -> None:
        header = GroupHeader(
            functional_id=gs.element(1),
            application_sender=gs.element(2),
            application_receiver=gs.element(3),
            date=gs.element(4),
            time=gs.element(5),
            control_number=gs.element(6),
            agency=gs.element(7),
            version=gs.element(8),
        )
        codes = [] if _NUMBER.match(header.control_number) else ["6"]
        if any(g.header.control_number == header.control_number for g in self.block.groups):
            codes.append("19")
        self.group = GroupBlock(header=header, gs=gs, sets=[], codes=codes)
        self.set_controls = set()

    def end_group(self, ge: Segment | None) -> None:
        group = self.group
        assert group is not None
        if ge is None:
            group.codes.append("3")
        else:
            if ge.element(2) != group.header.control_number:
                group.codes.append("4")
            if ge.element(1) != str(len(group.sets)):
                group.codes.append("5")
        self.block.groups.append(group)
        self.group = None

    def start_set(self, st: Segment) -> None:
        assert self.group is not None
        control = st.element(2)
        codes = []
        if not _SET_ID.match(st.element(1)):
            codes.append("6")
        if not _SET_CONTROL.match(control):
            codes.append("7")
        elif control in self.set_controls:
            codes.append("23")
        self.set_controls.add(control)
        self.set = SetBlock(
            set_id=st.element(1),
            control_number=control,
            implementation=st.element(3) or None,
            segments=[st],
            codes=codes,
        )

    def end_set(self, se: Segment | None) -> None:
        block = self.set
        assert block is not None
        assert self.group is not None
        if se is None:
            block.codes.append("2")
        else:
            if se.element(2) != block.control_number:
                block.codes.append("3")
            if se.element(1) != str(len(block.segments)):
                block.codes.append("4")
        self.group.sets.append(block)
        self.set = None
