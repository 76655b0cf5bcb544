"""Reading and writing the elements of one transaction set, with positions on every error.

`SetReader` walks a set's segments for a mapping: each value it reads is checked for its X12
type (date, time, decimal) and remembered with the canonical field it fills, so when the
canonical document refuses a value (msgspec's types, `__post_init__` rules) the rejection still
names the segment and element it came from, as AK3/AK4 must. `SetWriter` is the way back.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import msgspec

from canonical.common import MAX_DECIMAL_PLACES, MAX_INTEGER_DIGITS
from canonical.x12.envelope import SetBlock
from canonical.x12.errors import X12Error
from canonical.x12.notes import ElementNote, SegmentNote
from canonical.x12.profile import X12Profile
from canonical.x12.syntax import Delimiters, Segment

__all__ = ["SetReader", "SetRejected", "SetWriter", "format_decimal"]

T = TypeVar("T")

_TAG = re.compile(r"[A-Z][A-Z0-9]{1,2}\Z")
_DECIMAL = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\Z")
_INTEGER = re.compile(r"-?[0-9]{1,15}\Z")
_AT = re.compile(r"^(?P<message>.*) - at `\$(?P<path>[^`]*)`$", re.DOTALL)
_RELATIVE = re.compile(r"^(?P<field>[A-Za-z_][A-Za-z0-9_.\[\]]*): (?P<message>.*)$", re.DOTALL)
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")
# The segment a canonical field comes from, when a missing field means a missing segment.
SEGMENT_OF_FIELD = {
    "buyer": "N1",
    "supplier": "N1",
    "ship_to": "N1",
    "bill_to": "N1",
    "location_id": "N1",
    "currency": "CUR",
    "requested_date": "DTM",
    "po_number": "PRF",
    "sscc": "MAN",
    "quantity": "SN1",
    "packs": "HL",
    "items": "HL",
    "on_hand": "QTY",
    "uom": "QTY",
}
MAX_COPY = 99  # AK404 carries at most 99 characters of the bad data
MAX_NUMBER_CHARS = 30  # a number element longer than this is refused before it is parsed


class SetRejected(X12Error):
    """A set that cannot become a document; `note` is its AK3 (with AK4s)."""

    reason = "x12-set-rejected"

    def __init__(self, note: SegmentNote) -> None:
        first = note.elements[0] if note.elements else None
        detail = note.detail or (first.detail if first else None) or "segment in error"
        super().__init__(
            f"{note.segment_id} at set position {note.position}: {detail}",
            code=note.code,
            segment=note.file_segment,
            element=first.position if first else None,
        )
        self.note = note


class SetReader:
    """The segments between a set's ST and SE, and their values read with positions."""

    def __init__(self, block: SetBlock, profile: X12Profile, delimiters: Delimiters) -> None:
        self.profile = profile
        self.delimiters = delimiters
        self.st = block.segments[0]
        body = block.segments[1:]
        if body and body[-1].tag == "SE":
            body = body[:-1]
        self.segments = body
        self.loop: str | None = None  # the loop being read, for AK3's loop id
        self.origins: dict[str, tuple[Segment, int]] = {}
        self.loops: dict[int, str | None] = {}  # the loop each segment read was in
        for segment in body:
            if not _TAG.match(segment.tag):
                raise self.rejected(segment, None, code="1", detail="unrecognized segment id")

    def rejected(
        self,
        segment: Segment,
        element: int | None,
        *,
        code: str,
        detail: str,
        component: int | None = None,
    ) -> SetRejected:
        """Build the rejection of this set at `segment` (and `element` when given)."""
        elements: tuple[ElementNote, ...] = ()
        if element is not None:
            data = segment.element(element)
            elements = (
                ElementNote(
                    position=element,
                    component=component,
                    code=code,
                    data=data[:MAX_COPY] or None,
                    detail=detail,
                ),
            )
        return SetRejected(
            SegmentNote(
                segment_id=segment.tag[:3] or "?",
                position=segment.position - self.st.position + 1,
                code="8" if element is not None else code,
                loop_id=self.loops.get(segment.position, self.loop),
                elements=elements,
                file_segment=segment.position,
                detail=detail,
            )
        )

    def missing(self, tag: str, after: Segment | None = None) -> SetRejected:
        """A mandatory segment is missing (AK3 code 3), reported where it was expected."""
        where = after or (self.segments[-1] if self.segments else self.st)
        return SetRejected(
            SegmentNote(
                segment_id=tag,
                position=where.position - self.st.position + 1,
                code="3",
                loop_id=self.loops.get(where.position) if after is not None else None,
                file_segment=where.position,
                detail=f"mandatory segment {tag} missing",
            )
        )

    def first(self, tag: str) -> Segment:
        """Return the first segment `tag` of the set, or reject the set for its absence."""
        for segment in self.segments:
            if segment.tag == tag:
                return segment
        # Reported where a header segment is expected: right after the ST.
        raise self.missing(tag, self.segments[0] if self.segments else self.st)

    def text(
        self, segment: Segment, n: int, path: str | None = None, *, required: bool = False
    ) -> str | None:
        self.loops.setdefault(segment.position, self.loop)
        elements = segment.elements
        value = elements[n - 1] if n <= len(elements) else ""
        if not value:
            if required:
                raise self.rejected(segment, n, code="1", detail="mandatory element missing")
            return None
        if path is not None:
            self.origins[path] = (segment, n)
        return value

    def component(self, segment: Segment, n: int, part: int) -> str:
        """Return component `part` (1-based) of composite element `n`, "" if absent."""
        parts = segment.element(n).split(self.delimiters.component)
        return parts[part - 1] if part <= len(parts) else ""

    def date(
        self, segment: Segment, n: int, path: str | None = None, *, required: bool = False
    ) -> dt.date | None:
        value = self.text(segment, n, path, required=required)
        if value is None:
            return None
        try:
            if len(value) != 8 or not value.isdigit():
                raise ValueError(value)
            return dt.date(int(value[:4]), int(value[4:6]), int(value[6:]))
        except ValueError:
            raise self.rejected(segment, n, code="8", detail="not a date CCYYMMDD") from None

    def time(self, segment: Segment, n: int, *, required: bool = False) -> dt.time | None:
        value = self.text(segment, n, required=required)
        if value is None:
            return None
        try:
            if len(value) not in (4, 6, 7, 8) or not value.isdigit():
                raise ValueError(value)
            second = int(value[4:6]) if len(value) >= 6 else 0
            return dt.time(int(value[:2]), int(value[2:4]), second)
        except ValueError:
            raise self.rejected(segment, n, code="9", detail="not a time HHMM[SS]") from None

    def decimal(
        self,
        segment: Segment,
        n: int,
        path: str | None = None,
        *,
        required: bool = False,
        implied: int = 0,
    ) -> Decimal | None:
        value = self.text(segment, n, path, required=required)
        if value is None:
            return None
        pattern = _DECIMAL if not implied else _INTEGER
        if len(value) > MAX_NUMBER_CHARS or not pattern.match(value):
            raise self.rejected(segment, n, code="6", detail="not a number")
        try:
            number = Decimal(value)
        except InvalidOperation:  # the pattern admits only what Decimal reads; kept for safety
            raise self.rejected(segment, n, code="6", detail="not a number") from None
        # Canonical documents hold no more (common.MAX_*): refusing here keeps the mappings'
        # arithmetic on small numbers. Counted on the text (the pattern has vetted it).
        whole, _, fraction = value.lstrip("-").partition(".")
        if len(whole.lstrip("0")) - implied > MAX_INTEGER_DIGITS:
            raise self.rejected(segment, n, code="5", detail="more integer digits than allowed")
        if len(fraction) + implied > MAX_DECIMAL_PLACES:
            raise self.rejected(segment, n, code="5", detail="more decimal places than allowed")
        return number.scaleb(-implied) if implied else number

    def integer(
        self, segment: Segment, n: int, path: str | None = None, *, required: bool = False
    ) -> int | None:
        value = self.text(segment, n, path, required=required)
        if value is None:
            return None
        if not _INTEGER.match(value):
            raise self.rejected(segment, n, code="6", detail="not a whole number")
        return int(value)

    def build(self, cls: type[T], obj: dict[str, Any], anchor: Segment) -> T:
        """Convert `obj` to `cls`; a refusal is placed at the element the field came from.

        A value refused is an AK4 at the element it was read from; a field missing whose
        segment is known (`SEGMENT_OF_FIELD`) is that segment missing (AK3 code 3); anything
        else is an AK3 at the segment read nearest to the field.
        """
        try:
            return msgspec.convert(obj, cls)
        except msgspec.ValidationError as exc:
            path, message = _path_of(str(exc))
            near = self._nearest(path) or anchor
            missing = _MISSING.match(message)
            if missing is not None:
                tag = SEGMENT_OF_FIELD.get(missing["field"])
                if tag is not None:
                    raise self.missing(tag, near) from None
                detail = f"{path}.{missing['field']}: missing"
                raise self.rejected(near, None, code="8", detail=detail) from None
            origin = self._origin(path)
            if origin is None:
                raise self.rejected(near, None, code="8", detail=f"{path}: {message}") from None
            segment, n = origin
            raise self.rejected(segment, n, code=_element_code(message), detail=message) from None

    def _origin(self, path: str) -> tuple[Segment, int] | None:
        # The field itself, else (for a Struct refused as a whole) the first element read
        # under it.
        if path in self.origins:
            return self.origins[path]
        if path == "$":
            return None
        under = [key for key in self.origins if key.startswith(path + ".")]
        return self.origins[min(under, key=len)] if under else None

    def _nearest(self, path: str) -> Segment | None:
        # The segment of the field read whose path shares the most with `path`: for a field
        # that was never read, the segment of its Struct (the line, the party) it lacks.
        best, shared = None, -1
        for key, (segment, _) in self.origins.items():
            common = _shared(key, path)
            if common > shared:
                best, shared = segment, common
        return best


def _shared(a: str, b: str) -> int:
    """How many leading characters two JSON paths share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _path_of(error: str) -> tuple[str, str]:
    """Split msgspec's "message - at `$.path`" into ("$.path", message), nested rules joined."""
    match = _AT.match(error)
    path, message = ("$", error) if match is None else ("$" + match["path"], match["message"])
    relative = _RELATIVE.match(message)
    if relative is not None:  # an InvalidField raised by __post_init__: "lines[2].sku: ..."
        field = relative["field"]
        path = path + field if field.startswith("[") else f"{path}.{field}"
        message = relative["message"]
    return path, message


def _element_code(message: str) -> str:
    if "length >=" in message:
        return "4"
    if "length <=" in message:
        return "5"
    if "regex" in message:
        return "6"
    return "7"


class SetWriter:
    """Collects the segments of one outbound set and wraps them in ST/SE."""

    def __init__(self, profile: X12Profile, delimiters: Delimiters) -> None:
        self.profile = profile
        self.delimiters = delimiters
        self.body: list[tuple[str, ...]] = []
        self._forbidden = delimiters.element + delimiters.segment + delimiters.component
        if delimiters.repetition:
            self._forbidden += delimiters.repetition

    def segment(self, tag: str, *elements: object) -> None:
        """Add a segment; None and "" are empty elements, trailing empties are dropped."""
        values = [self.value(tag, n, v) for n, v in enumerate(elements, start=1)]
        while values and not values[-1]:
            values.pop()
        self.body.append((tag, *values))

    def composite(self, *parts: str | None) -> str:
        values = [p or "" for p in parts]
        while values and not values[-1]:
            values.pop()
        for value in values:
            self._check(value, "composite")
        return self.delimiters.component.join(values)

    def value(self, tag: str, n: int, value: object) -> str:
        if value is None:
            return ""
        if isinstance(value, Decimal):
            return format_decimal(value)
        if isinstance(value, dt.date):
            return f"{value.year:04d}{value.month:02d}{value.day:02d}"
        text = str(value)
        if tag != "__raw__":
            self._check(text, f"{tag}{n:02d}")
        return text

    def _check(self, text: str, where: str) -> None:
        bad = next((c for c in text if c in self._forbidden or c in "\r\n"), None)
        if bad is not None:
            raise X12Error(f"{where}: {text!r} holds {bad!r}, a delimiter of this interchange")

    def finish(self, set_id: str, control_number: str) -> list[tuple[str, ...]]:
        """Return ST, the body and SE (SE01 counting ST..SE)."""
        return [
            ("ST", set_id, control_number),
            *self.body,
            ("SE", str(len(self.body) + 2), control_number),
        ]


def format_decimal(value: Decimal) -> str:
    """Write a decimal as X12's R type: no exponent, no plus sign."""
    text = format(value, "f")
    return "0" if text in ("-0", "-0.0") else text
