"""Segments to bytes, and canonical documents to one outbound interchange.

Control numbers are parameters: the store's persisted per-partner sequences hand them out
(FIELD-NOTES "X12": never the clock, never random). The date and time in ISA09/10 and GS04/05
are the caller's `at`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Annotated

from msgspec import Meta, Struct

from canonical.documents import Document, document_type_of
from canonical.x12.elements import SetWriter
from canonical.x12.errors import X12Error
from canonical.x12.profile import X12Profile
from canonical.x12.sets import BY_DOCUMENT_TYPE
from canonical.x12.syntax import Delimiters

__all__ = [
    "ControlNumbers",
    "SentSet",
    "X12Outbound",
    "encode_interchange",
    "isa_elements",
    "render_segments",
]

ControlNumber = Annotated[int, Meta(ge=1, le=999_999_999)]


class ControlNumbers(Struct, frozen=True, kw_only=True):
    """The first ISA13 and GS06 to use; further ones follow consecutively."""

    interchange: ControlNumber
    group: ControlNumber


class SentSet(Struct, frozen=True, kw_only=True):
    """Where one outbound document went: the key a 997 answers it by (GS06, ST02)."""

    document_type: str
    set_id: str
    group: str  # GS06
    transaction_set: str  # ST02


class X12Outbound(Struct, frozen=True, kw_only=True):
    """One outbound interchange: its bytes, its ISA13, and where each document went."""

    data: bytes
    interchange: str
    sets: tuple[SentSet, ...]


def isa_elements(
    *,
    sender: tuple[str, str],
    receiver: tuple[str, str],
    at: dt.datetime,
    version: str,
    control_number: int,
    ack_requested: bool,
    usage: str,
    delimiters: Delimiters,
) -> tuple[str, ...]:
    """Return the ISA's elements, each padded to its fixed width."""
    for qualifier, identifier in (sender, receiver):
        if len(qualifier) != 2 or not 0 < len(identifier) <= 15:
            raise X12Error(f"interchange id {qualifier}/{identifier} does not fit the ISA")
    return (
        "ISA",
        "00",
        " " * 10,
        "00",
        " " * 10,
        sender[0],
        sender[1].ljust(15),
        receiver[0],
        receiver[1].ljust(15),
        f"{at:%y%m%d}",
        f"{at:%H%M}",
        delimiters.repetition or "U",
        version,
        f"{control_number:09d}",
        "1" if ack_requested else "0",
        usage,
        delimiters.component,
    )


def render_segments(
    segments: Sequence[tuple[str, ...]], delimiters: Delimiters, *, line_break: bool
) -> bytes:
    """Join segments with the interchange's delimiters into Latin-1 bytes."""
    end = delimiters.segment + ("\n" if line_break and delimiters.segment != "\n" else "")
    text = "".join(delimiters.element.join(segment) + end for segment in segments)
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError as exc:
        bad = text[exc.start : exc.end]
        raise X12Error(f"{bad!r} is outside the character set X12 files are written in") from None


def encode_interchange(
    documents: Sequence[Document],
    profile: X12Profile,
    control_numbers: ControlNumbers,
    *,
    at: dt.datetime,
) -> X12Outbound:
    """Write `documents` as one interchange: one group per functional id, one set each.

    Raises `X12Error` for a document type with no X12 mapping or a value X12 cannot carry
    (a delimiter inside a value, a character outside Latin-1).
    """
    delimiters = profile.delimiters
    groups: dict[str, list[tuple[str, str, list[tuple[str, ...]]]]] = {}
    for document in documents:
        document_type = document_type_of(document)
        mapping = BY_DOCUMENT_TYPE.get(document_type)
        if mapping is None:
            raise X12Error(f"no X12 transaction set carries a {document_type}")
        writer = SetWriter(profile, delimiters)
        mapping.encode(document, writer)
        members = groups.setdefault(mapping.functional_id, [])
        control = f"{len(members) + 1:04d}"
        members.append((document_type, mapping.set_id, writer.finish(mapping.set_id, control)))
    segments: list[tuple[str, ...]] = [
        isa_elements(
            sender=(profile.sender_qualifier, profile.sender_id),
            receiver=(profile.receiver_qualifier, profile.receiver_id),
            at=at,
            version=profile.interchange_version,
            control_number=control_numbers.interchange,
            ack_requested=profile.request_ta1,
            usage=profile.usage,
            delimiters=delimiters,
        )
    ]
    sent: list[SentSet] = []
    for offset, (functional_id, members) in enumerate(groups.items()):
        group = str(control_numbers.group + offset)
        segments.append(
            (
                "GS",
                functional_id,
                profile.application_sender or profile.sender_id,
                profile.application_receiver or profile.receiver_id,
                f"{at:%Y%m%d}",
                f"{at:%H%M}",
                group,
                "X",
                profile.version,
            )
        )
        for document_type, set_id, set_segments in members:
            segments += set_segments
            sent.append(
                SentSet(
                    document_type=document_type,
                    set_id=set_id,
                    group=group,
                    transaction_set=set_segments[0][2],
                )
            )
        segments.append(("GE", str(len(members)), group))
    interchange = f"{control_numbers.interchange:09d}"
    segments.append(("IEA", str(len(groups)), interchange))
    data = render_segments(segments, delimiters, line_break=profile.line_break)
    return X12Outbound(data=data, interchange=interchange, sets=tuple(sent))
