"""A partner's 997 or 999, read back: which of our (GS06, ST02) it accepted or rejected, and why.

ST02 is unique only inside its group, so answers are keyed by (GS06, ST02) (FIELD-NOTES "X12").
The outcome uses the same notes the gateway writes (`canonical.x12.notes`), so an operator reads
a partner's AK3/AK4 in the words the gateway's own acks use.
"""

from __future__ import annotations

from canonical.x12.elements import SetReader
from canonical.x12.notes import ElementNote, GroupOutcome, SegmentNote, SetOutcome
from canonical.x12.syntax import Segment

__all__ = ["read_functional_ack"]


def read_functional_ack(r: SetReader) -> GroupOutcome:
    """Read a 997 or 999 set: the group it answers and each set's outcome with its notes."""
    ak1 = r.first("AK1")
    functional_id = r.text(ak1, 1, required=True) or ""
    control = r.text(ak1, 2, required=True) or ""
    r.integer(ak1, 2, required=True)  # GS06 is numeric: a 997 naming another is not ours
    sets: list[SetOutcome] = []
    current: dict[str, object] | None = None
    notes: list[SegmentNote] = []
    codes: tuple[str, ...] = ()
    received = None
    declared = None
    for seg in r.segments:
        tag = seg.tag
        if tag == "AK2":
            if current is not None:
                sets.append(_set(current, notes, None))
            current, notes = {"seg": seg}, []
        elif tag in ("AK3", "IK3") and current is not None:
            notes.append(_segment_note(r, seg))
        elif tag in ("AK4", "IK4") and notes:
            notes[-1] = _with_element(r, notes[-1], seg)
        elif tag in ("AK5", "IK5") and current is not None:
            sets.append(_set(current, notes, seg))
            current, notes = None, []
        elif tag == "AK9":
            if current is not None:
                sets.append(_set(current, notes, None))
                current = None
            declared = r.text(seg, 1, required=True)
            received = r.integer(seg, 3)
            codes = tuple(c for c in seg.elements[4:9] if c)
    if current is not None:
        sets.append(_set(current, notes, None))
    if received is None:
        raise r.missing("AK9")
    return GroupOutcome(
        functional_id=functional_id,
        control_number=control,
        version=ak1.element(3),
        sets=tuple(sets),
        received=received,
        codes=codes,
        declared=declared,
    )


def _set(current: dict[str, object], notes: list[SegmentNote], ak5: Segment | None) -> SetOutcome:
    ak2 = current["seg"]
    assert isinstance(ak2, Segment)
    status = ak5.element(1) if ak5 is not None else ("R" if notes else "A")
    return SetOutcome(
        set_id=ak2.element(1),
        control_number=ak2.element(2),
        accepted=status in ("A", "E"),
        codes=tuple(c for c in (ak5.elements[1:6] if ak5 is not None else ()) if c),
        notes=tuple(notes),
        implementation=ak2.element(3) or None,
    )


def _segment_note(r: SetReader, seg: Segment) -> SegmentNote:
    return SegmentNote(
        segment_id=r.text(seg, 1, required=True) or "",
        position=r.integer(seg, 2, required=True) or 0,
        loop_id=seg.element(3) or None,
        code=seg.element(4) or "8",
    )


def _with_element(r: SetReader, note: SegmentNote, seg: Segment) -> SegmentNote:
    position = r.component(seg, 1, 1)
    component = r.component(seg, 1, 2)
    if not position.isdigit() or len(position) > 4:
        raise r.rejected(seg, 1, code="6", detail="not an element position")
    element = ElementNote(
        position=int(position),
        component=int(component) if component.isdigit() and len(component) < 4 else None,
        reference=seg.element(2) or None,
        code=seg.element(3) or "",
        data=seg.element(4) or None,
    )
    return SegmentNote(
        segment_id=note.segment_id,
        position=note.position,
        code=note.code,
        loop_id=note.loop_id,
        elements=(*note.elements, element),
    )
