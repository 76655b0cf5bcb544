"""Answers a reading owes: the acks rendered with the store's numbers, and replay refusals.

The store persists per-partner control-number sequences and the interchange keys it has
accepted; these functions take what it hands out and never read a clock for a number.
"""

from __future__ import annotations

import datetime as dt

from canonical.files import FileDecoding, FileProblem, Provenance
from canonical.x12.acks import PendingAck, render_pending
from canonical.x12.envelope import InterchangeHeader
from canonical.x12.notes import InterchangeKey, Ta1
from canonical.x12.render import ControlNumbers
from canonical.x12.report import X12Problem, X12Reading

__all__ = ["duplicate_ta1", "refuse_duplicate", "render_acknowledgements"]


def duplicate_ta1(header: InterchangeHeader) -> Ta1:
    """The TA1 refusing a replayed interchange (note 025, duplicate control number)."""
    return Ta1(
        control_number=header.control_number,
        date=header.date,
        time=header.time,
        status="R",
        note="025",
    )


def refuse_duplicate(reading: X12Reading, key: InterchangeKey) -> X12Reading:
    """Drop what interchange `key` carried (the store has seen it) and answer it with TA1 025."""
    report = next((i for i in reading.interchanges if i.key == key), None)
    if report is None:
        return reading
    number = key.control_number
    documents = tuple(d for d in reading.decoding.documents if d.provenance.interchange != number)
    problems = tuple(p for p in reading.decoding.problems if p.provenance.interchange != number)
    detail = "interchange control number already received from this sender"
    file_problem = FileProblem(
        provenance=Provenance(file=_file_of(reading), sha256=_sha_of(reading), interchange=number),
        reason="x12_duplicate_interchange",
        detail=detail,
    )
    acks = [a for a in reading.acknowledgements if a.interchange.key != key]
    acks.append(
        PendingAck(
            interchange=report.header,
            kind=reading.profile.acknowledgement,
            ta1=duplicate_ta1(report.header),
        )
    )
    return X12Reading(
        decoding=FileDecoding(
            documents=documents,
            problems=(*problems, file_problem),
            refused=reading.decoding.refused or _nothing_left(reading, key),
        ),
        interchanges=reading.interchanges,
        keys=reading.keys,
        acknowledgements=tuple(acks),
        functional_acks=reading.functional_acks,
        problems=(
            *reading.problems,
            X12Problem(code="025", detail=detail, segment=None, interchange=number),
        ),
        profile=reading.profile,
    )


def _nothing_left(reading: X12Reading, key: InterchangeKey) -> str | None:
    """The refusal of a file whose every sound interchange was a replay, else None."""
    if any(i.note == "000" and i.key != key for i in reading.interchanges):
        return None
    return f"x12: interchange {key.control_number} already received (TA1 025)"


def render_acknowledgements(
    reading: X12Reading, control_numbers: ControlNumbers, *, at: dt.datetime | None = None
) -> list[bytes]:
    """Write the acks `reading` owes, one interchange each, numbered from `control_numbers`.

    Numbers are used consecutively (`reading.control_numbers_needed` says how many); `at`
    dates the envelopes (now, UTC, when not given: a date, never a control number).
    """
    when = at or dt.datetime.now(dt.UTC)
    out = []
    group = control_numbers.group
    for offset, pending in enumerate(reading.acknowledgements):
        out.append(
            render_pending(
                pending,
                reading.profile,
                interchange_number=control_numbers.interchange + offset,
                first_group=group,
                at=when,
            )
        )
        group += len(pending.groups)
    return out


def _file_of(reading: X12Reading) -> str:
    return next((d.provenance.file for d in reading.decoding.documents), "") or next(
        (p.provenance.file for p in reading.decoding.problems), ""
    )


def _sha_of(reading: X12Reading) -> str:
    return next((d.provenance.sha256 for d in reading.decoding.documents), "") or next(
        (p.provenance.sha256 for p in reading.decoding.problems), ""
    )
