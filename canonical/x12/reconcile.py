"""What became of each document the gateway sent: accepted, rejected or not yet acknowledged.

A partner's 997/999 answers a group by its GS06 and each set by its ST02; ST02 is unique only
inside its group, so a sent set is found by (GS06, ST02) (FIELD-NOTES "X12"). A 997 may leave
out the AK2 loops: then its AK9 speaks for every set of the group (A or E: accepted; R:
rejected); a partial (P) one without the set's AK2 says nothing about it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

from msgspec import Struct

from canonical.x12.notes import GroupOutcome, SegmentNote
from canonical.x12.render import SentSet
from canonical.x12.sets import BY_SET_ID

__all__ = ["SentOutcome", "reconcile"]


class SentOutcome(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One sent set and what the partner's acknowledgements say of it."""

    sent: SentSet
    status: Literal["accepted", "rejected", "unacknowledged"]
    codes: tuple[str, ...] = ()  # AK5 codes of the set, or AK9 codes of its group
    notes: tuple[SegmentNote, ...] = ()  # AK3/AK4: which segment and element, and why


def reconcile(sent: Sequence[SentSet], answers: Iterable[GroupOutcome]) -> list[SentOutcome]:
    """Match sent sets to the acknowledgements received, in the order they were sent."""
    groups: dict[tuple[str, str], GroupOutcome] = {}
    for answer in answers:
        # A later answer to the same group (a resent 997) replaces an earlier one.
        groups[(answer.functional_id, _number(answer.control_number))] = answer
    return [_outcome(one, groups) for one in sent]


def _outcome(sent: SentSet, groups: dict[tuple[str, str], GroupOutcome]) -> SentOutcome:
    mapping = BY_SET_ID.get(sent.set_id)
    functional_id = mapping.functional_id if mapping is not None else ""
    group = groups.get((functional_id, _number(sent.group)))
    if group is None:
        return SentOutcome(sent=sent, status="unacknowledged")
    for answer in group.sets:
        if _same_set(answer.control_number, sent.transaction_set):
            if answer.accepted and not group.codes:
                return SentOutcome(sent=sent, status="accepted")
            return SentOutcome(
                sent=sent,
                status="rejected",
                codes=answer.codes or group.codes,
                notes=answer.notes,
            )
    if group.status in ("A", "E"):
        return SentOutcome(sent=sent, status="accepted")
    if group.status == "R":
        return SentOutcome(sent=sent, status="rejected", codes=group.codes)
    return SentOutcome(sent=sent, status="unacknowledged")


def _number(control: str) -> str:
    """GS06 is numeric: "0042" and "42" are one group."""
    stripped = control.lstrip("0")
    return stripped if control.isdigit() else control


def _same_set(answered: str, sent: str) -> bool:
    if answered.isdigit() and sent.isdigit():
        return int(answered) == int(sent)
    return answered == sent
