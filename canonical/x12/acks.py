"""Acknowledgements to send: 997 or 999 per functional group received, TA1 per interchange.

Their envelope mirrors the inbound one (FIELD-NOTES "X12"): ISA sender and receiver swapped,
ISA12 and ISA15 as received, and per inbound group an FA group with GS02/GS03 swapped and the
same GS08. Each 997 says AK1 (GS01, GS06), then per set AK2 with, when it is rejected, AK3 per
segment in error and AK4 per element, AK5, and AK9 (A, P when only some sets were accepted, R).
A 999 says the same with IK3/IK4/IK5, and AK1/AK2 carrying GS08/ST03.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from msgspec import Struct

from canonical.x12.envelope import InterchangeHeader
from canonical.x12.notes import GroupOutcome, SetOutcome, Ta1
from canonical.x12.profile import X12Profile
from canonical.x12.render import isa_elements, render_segments
from canonical.x12.syntax import Delimiters

__all__ = ["AckGroup", "PendingAck", "ack_set_segments", "render_pending"]

MAX_AK5_CODES = 5  # AK502..AK506
MAX_AK9_CODES = 5  # AK905..AK909


class AckGroup(Struct, frozen=True, kw_only=True):
    """One inbound group's outcome, with the GS ids its FA group mirrors."""

    application_sender: str  # the inbound GS02
    application_receiver: str  # the inbound GS03
    outcome: GroupOutcome


class PendingAck(Struct, frozen=True, kw_only=True):
    """The answer one inbound interchange is owed: a TA1, acknowledgement sets, or both."""

    interchange: InterchangeHeader  # the inbound ISA, mirrored
    kind: Literal["997", "999"]
    ta1: Ta1 | None = None
    groups: tuple[AckGroup, ...] = ()


def render_pending(
    pending: PendingAck,
    profile: X12Profile,
    *,
    interchange_number: int,
    first_group: int,
    at: dt.datetime,
) -> bytes:
    """Write one pending answer as an interchange numbered from the caller's sequences."""
    inbound = pending.interchange
    wanted = profile.delimiters
    delimiters = Delimiters(
        element=wanted.element,
        component=wanted.component,
        segment=wanted.segment,
        repetition=profile.repetition_separator if inbound.version >= "00403" else None,
    )
    segments: list[tuple[str, ...]] = [
        isa_elements(
            sender=(inbound.receiver_qualifier, inbound.receiver_id),
            receiver=(inbound.sender_qualifier, inbound.sender_id),
            at=at,
            version=inbound.version,
            control_number=interchange_number,
            ack_requested=False,
            usage=inbound.usage,
            delimiters=delimiters,
        )
    ]
    if pending.ta1 is not None:
        ta1 = pending.ta1
        segments.append(("TA1", ta1.control_number, ta1.date, ta1.time, ta1.status, ta1.note))
    for offset, group in enumerate(pending.groups):
        number = str(first_group + offset)
        segments.append(
            (
                "GS",
                "FA",
                group.application_receiver,
                group.application_sender,
                f"{at:%Y%m%d}",
                f"{at:%H%M}",
                number,
                "X",
                group.outcome.version,
            )
        )
        segments += ack_set_segments(group.outcome, pending.kind, "0001", delimiters)
        segments.append(("GE", "1", number))
    segments.append(("IEA", str(len(pending.groups)), f"{interchange_number:09d}"))
    return render_segments(segments, delimiters, line_break=profile.line_break)


def ack_set_segments(
    outcome: GroupOutcome, kind: Literal["997", "999"], control: str, delimiters: Delimiters
) -> list[tuple[str, ...]]:
    """Return ST..SE of the 997 or 999 acknowledging one group."""
    clean = _Cleaner(delimiters)
    body: list[tuple[str, ...]] = []
    if kind == "999":
        body.append(("AK1", outcome.functional_id, outcome.control_number, outcome.version))
    else:
        body.append(("AK1", outcome.functional_id, outcome.control_number))
    for set_outcome in outcome.sets:
        body += _set_segments(set_outcome, kind, clean, delimiters)
    codes = outcome.codes[:MAX_AK9_CODES]
    body.append(
        _trim(
            (
                "AK9",
                outcome.status,
                str(len(outcome.sets)),
                str(outcome.received),
                str(outcome.accepted),
                *codes,
            )
        )
    )
    return [("ST", kind, control), *body, ("SE", str(len(body) + 2), control)]


def _set_segments(
    outcome: SetOutcome, kind: str, clean: _Cleaner, delimiters: Delimiters
) -> list[tuple[str, ...]]:
    prefix = "IK" if kind == "999" else "AK"
    ak2: tuple[str, ...] = ("AK2", clean(outcome.set_id), clean(outcome.control_number))
    if kind == "999" and outcome.implementation:
        ak2 += (clean(outcome.implementation),)
    segments = [ak2]
    for note in outcome.notes:
        segments.append(
            _trim(
                (
                    f"{prefix}3",
                    clean(note.segment_id),
                    str(note.position),
                    clean(note.loop_id or ""),
                    note.code,
                )
            )
        )
        for element in note.elements:
            position = str(element.position)
            if element.component is not None:
                position += f"{delimiters.component}{element.component}"
            segments.append(
                _trim(
                    (
                        f"{prefix}4",
                        position,
                        element.reference or "",
                        element.code,
                        clean(element.data or ""),
                    )
                )
            )
    status = "A" if outcome.accepted else "R"
    segments.append(_trim((f"{prefix}5", status, *outcome.codes[:MAX_AK5_CODES])))
    return segments


def _trim(segment: tuple[str, ...]) -> tuple[str, ...]:
    end = len(segment)
    while end > 1 and not segment[end - 1]:
        end -= 1
    return segment[:end]


class _Cleaner:
    """Copies of inbound data lose the characters that are delimiters of the answer."""

    def __init__(self, delimiters: Delimiters) -> None:
        forbidden = delimiters.element + delimiters.segment + delimiters.component + "\r\n"
        if delimiters.repetition:
            forbidden += delimiters.repetition
        self.table = str.maketrans("", "", forbidden)

    def __call__(self, value: str) -> str:
        return value.translate(self.table)
