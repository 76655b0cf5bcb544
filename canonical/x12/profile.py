"""A partner's X12 profile: who is who in the envelopes, which version, which ack, which codes.

Partner implementation guides narrow the standard; the profile holds what differs per partner
over one base mapping (FIELD-NOTES "X12"). Every field has a default, so a partner without a
profile (or `gateway edi inspect` without a config) reads and answers sensibly.
"""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct, field

from canonical.x12.syntax import Delimiters, Limits

__all__ = ["X12Profile"]

_Qualifier = Annotated[str, Meta(pattern=r"^[A-Z0-9]{2}$")]
_InterchangeId = Annotated[str, Meta(min_length=1, max_length=15)]
_Separator = Annotated[str, Meta(min_length=1, max_length=1)]


class X12Profile(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How one partner's X12 is read and written.

    `sender_*` is the gateway's own interchange id (ISA05/06 of what it sends), `receiver_*` the
    partner's (ISA07/08); acknowledgements mirror the inbound envelope instead. The maps translate
    the partner's codes to ours on the way in and back on the way out: `uom_map` units of measure
    ("CA" -> "CS"), `party_map` party ids in N1 segments.
    """

    sender_qualifier: _Qualifier = "ZZ"
    sender_id: _InterchangeId = "GATEWAY"
    receiver_qualifier: _Qualifier = "ZZ"
    receiver_id: _InterchangeId = "PARTNER"
    application_sender: _InterchangeId | None = None  # GS02; the interchange id if None
    application_receiver: _InterchangeId | None = None  # GS03; the interchange id if None
    version: Annotated[str, Meta(pattern=r"^[0-9]{6}[A-Z0-9]{0,6}$")] = "004010"  # GS08
    acknowledgement: Literal["997", "999"] = "997"
    request_ta1: bool = False  # ISA14 of what the gateway sends
    # Refuse an interchange not from receiver_* to sender_* (TA1 006/008): on once the ids are
    # the real ones; off by default, so that reading without a profile reads anything.
    check_interchange_ids: bool = False
    usage: Literal["P", "T"] = "P"  # ISA15: production or test
    uom_map: dict[str, str] = field(default_factory=dict)  # partner's unit -> ours
    party_map: dict[str, str] = field(default_factory=dict)  # partner's party id -> ours
    element_separator: _Separator = "*"
    component_separator: _Separator = ":"
    repetition_separator: _Separator = "^"
    segment_terminator: _Separator = "~"
    line_break: bool = True  # a newline after each terminator, for people reading the file
    max_segments: Annotated[int, Meta(ge=1)] = 1_000_000
    max_segment_chars: Annotated[int, Meta(ge=106)] = 8192
    max_elements: Annotated[int, Meta(ge=16)] = 256

    @property
    def interchange_version(self) -> str:
        """ISA12 for `version`: "00401" for 004010."""
        return self.version[:5]

    @property
    def delimiters(self) -> Delimiters:
        """The delimiters the gateway writes with."""
        repetition = self.repetition_separator if self.interchange_version >= "00403" else None
        return Delimiters(
            element=self.element_separator,
            component=self.component_separator,
            segment=self.segment_terminator,
            repetition=repetition,
        )

    @property
    def limits(self) -> Limits:
        """The parser's bounds for this partner's files."""
        return Limits(
            max_segments=self.max_segments,
            max_segment_chars=self.max_segment_chars,
            max_elements=self.max_elements,
        )

    def our_uom(self, theirs: str) -> str:
        return self.uom_map.get(theirs, theirs)

    def their_uom(self, ours: str) -> str:
        return next((k for k, v in self.uom_map.items() if v == ours), ours)

    def our_party(self, theirs: str) -> str:
        return self.party_map.get(theirs, theirs)

    def their_party(self, ours: str) -> str:
        return next((k for k, v in self.party_map.items() if v == ours), ours)
