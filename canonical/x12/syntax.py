"""Bytes to segments: delimiters from each fixed-width ISA, then segments up to its IEA.

The ISA is 106 characters: the element separator at position 4 (and at every field boundary),
the repetition separator at 83 (from ISA12 00403 on, when not alphanumeric), the component
separator at 105 and the segment terminator at 106 (FIELD-NOTES "X12"). Each interchange of a
file brings its own delimiters. Line breaks, tabs and spaces between segments are skipped unless
they are a delimiter themselves (a terminator may be a line break).

This module only splits: it judges nothing but what it needs to find the next segment. A
segment id it does not know is the set's business (AK3 code 1), a missing IEA the envelope's
(TA1 note 023, recorded as the interchange's `fault`). What stops the split (an unreadable ISA,
a bound exceeded) raises `X12Error`.
"""

from __future__ import annotations

import functools
import re

from msgspec import Struct

from canonical.x12.errors import X12Error

__all__ = [
    "ISA_LENGTH",
    "Delimiters",
    "Limits",
    "RawInterchange",
    "Segment",
    "split_interchanges",
]

ISA_LENGTH = 106
# Widths of ISA01..ISA16; a separator precedes each.
_ISA_WIDTHS = (2, 10, 2, 10, 2, 15, 2, 15, 6, 4, 1, 5, 9, 1, 1, 1)
_BLANKS = "\r\n\t "


class Limits(Struct, frozen=True, kw_only=True):
    """Bounds on what one file may make the parser hold."""

    max_segments: int = 1_000_000  # per file
    max_segment_chars: int = 8192  # one segment, delimiters included
    max_elements: int = 256  # per segment


class Delimiters(Struct, frozen=True, kw_only=True):
    """The four delimiters an interchange uses; `repetition` is None before version 00403."""

    element: str = "*"
    component: str = ":"
    segment: str = "~"
    repetition: str | None = "^"


class Segment(Struct, frozen=True):
    """One segment: its id, its elements (`elements[0]` is element 1), where it is in the file."""

    tag: str
    elements: tuple[str, ...]
    position: int  # in the file, the first ISA being 1
    offset: int  # character offset in the file

    def element(self, n: int) -> str:
        """Return element `n` (1-based), "" when the segment stops before it."""
        return self.elements[n - 1] if 0 < n <= len(self.elements) else ""


class RawInterchange(Struct, frozen=True, kw_only=True):
    """The segments of one interchange, ISA first; `fault` when it ended before its IEA."""

    delimiters: Delimiters
    segments: tuple[Segment, ...]
    fault: X12Error | None = None


def split_interchanges(data: bytes, limits: Limits | None = None) -> list[RawInterchange]:
    """Split a file into interchanges of segments; raises `X12Error` if it cannot be split."""
    # X12's basic and extended character sets are within Latin-1, and Latin-1 decodes any byte:
    # a stray byte becomes a bad value in an element, reported there, not a decode failure here.
    text = data.decode("latin-1")
    splitter = _Splitter(text, limits or Limits())
    interchanges = []
    while (start := splitter.skip_blanks(splitter.pos, "")) < len(text):
        splitter.pos = start
        interchanges.append(splitter.interchange())
    if not interchanges:
        raise X12Error("the file holds no interchange (no ISA)", code="023", segment=1)
    return interchanges


@functools.lru_cache(maxsize=64)
def _finder(delimiters: Delimiters) -> re.Pattern[str]:
    """Match blanks, then a segment's text up to its terminator (or the end of the file)."""
    own = delimiters.element + delimiters.segment + delimiters.component
    blanks = "".join(c for c in _BLANKS if c not in own)
    skip = f"[{re.escape(blanks)}]*" if blanks else ""
    terminator = re.escape(delimiters.segment)
    return re.compile(f"{skip}([^{terminator}]*)(?:{terminator}|\\Z)")


class _Splitter:
    def __init__(self, text: str, limits: Limits) -> None:
        self.text = text
        self.limits = limits
        self.pos = 0
        self.count = 0  # segments so far in the file

    def skip_blanks(self, pos: int, delimiters: str) -> int:
        text, end = self.text, len(self.text)
        while pos < end and text[pos] in _BLANKS and text[pos] not in delimiters:
            pos += 1
        return pos

    def interchange(self) -> RawInterchange:
        isa, delimiters = self.isa()
        segments = [isa]
        fault: X12Error | None = None
        text, limits = self.text, self.limits
        separator, most = delimiters.element, limits.max_elements + 1
        # Line breaks are no data: a CR before a LF terminator, CR/LF before any other.
        strip = "\r" if delimiters.segment == "\n" else "\r\n"
        find = _finder(delimiters).match
        pos = self.pos
        while True:
            # One C-level match per segment: blanks before it, its text, its terminator.
            found = find(text, pos)
            assert found is not None  # every part of the pattern may match nothing
            start, stop = found.span(1)
            if start >= len(text):
                fault = X12Error("the file ends before the IEA", code="023", offset=start)
                pos = start
                break
            if text.startswith("ISA", start):
                # The next interchange starts where this one's IEA should be.
                fault = X12Error("an ISA comes before the IEA", code="023", offset=start)
                pos = start
                break
            position = self._count()
            if stop - start > limits.max_segment_chars:
                raise X12Error(
                    f"a segment is longer than {limits.max_segment_chars} characters",
                    code="024",
                    segment=position,
                    offset=start,
                )
            fields = text[start:stop].rstrip(strip).split(separator, most)
            if len(fields) > most:
                raise X12Error(
                    f"a segment has more than {limits.max_elements} elements",
                    code="024",
                    segment=position,
                    element=most,
                    offset=start,
                )
            segments.append(Segment(fields[0], tuple(fields[1:]), position, start))
            pos = found.end()
            if fields[0] == "IEA":
                break
        self.pos = pos
        if fault is not None:
            fault.segment = self.count + 1
        return RawInterchange(delimiters=delimiters, segments=tuple(segments), fault=fault)

    def isa(self) -> tuple[Segment, Delimiters]:
        text, pos = self.text, self.pos
        position = self._count()
        header = text[pos : pos + ISA_LENGTH]
        if not header.startswith("ISA"):
            raise X12Error(
                f"expected an ISA segment, found {header[:3]!r}",
                code="024",
                segment=position,
                offset=pos,
            )
        if len(header) < ISA_LENGTH:
            raise X12Error(
                f"the ISA is {len(header)} characters, not {ISA_LENGTH}",
                code="023",
                segment=position,
                offset=pos,
            )
        separator, component, terminator = header[3], header[104], header[105]
        fields = []
        at = 3
        for n, width in enumerate(_ISA_WIDTHS, start=1):
            if header[at] != separator:
                raise X12Error(
                    f"the ISA has {header[at]!r} where the element separator "
                    f"{separator!r} must precede ISA{n:02d}",
                    code="026",
                    segment=position,
                    element=n,
                    offset=pos,
                )
            fields.append(header[at + 1 : at + 1 + width])
            at += 1 + width
        if separator.isalnum() or separator in (component, terminator):
            raise X12Error(
                f"element separator {separator!r} is alphanumeric or another delimiter",
                code="026",
                segment=position,
                element=1,
                offset=pos,
            )
        if component.isalnum() or component == terminator:
            raise X12Error(
                f"component separator {component!r} is alphanumeric or the terminator",
                code="027",
                segment=position,
                element=16,
                offset=pos,
            )
        if terminator.isalnum():
            raise X12Error(
                f"segment terminator {terminator!r} is alphanumeric",
                code="004",
                segment=position,
                offset=pos,
            )
        repetition = fields[10]
        repeats = (
            repetition
            if fields[11] >= "00403"
            and not repetition.isalnum()
            and repetition not in (separator, component, terminator)
            else None
        )
        self.pos = pos + ISA_LENGTH
        delimiters = Delimiters(
            element=separator, component=component, segment=terminator, repetition=repeats
        )
        return Segment("ISA", tuple(fields), position, pos), delimiters

    def _count(self) -> int:
        self.count += 1
        if self.count > self.limits.max_segments:
            raise X12Error(
                f"the file has more than {self.limits.max_segments} segments",
                code="024",
                segment=self.count,
            )
        return self.count
