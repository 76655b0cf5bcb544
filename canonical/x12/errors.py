"""The codec's one error type: what went wrong, and where in the file (segment and element).

Every failure inside `canonical.x12` surfaces as `X12Error` (the fuzz tests hold the parser to
that); positions are 1-based, as an operator counts them in an editor and as a 997 reports them.
"""

from __future__ import annotations

from typing import ClassVar

from canonical.errors import GatewayError

__all__ = ["X12Error"]


class X12Error(GatewayError):
    """An X12 file, interchange or set that cannot be read or written.

    `code` is the X12 code the error answers with where one exists (a TA1 note such as "023",
    an AK3/AK4 code), `segment` the segment's position in the file (ISA = 1), `element` the
    element's position in that segment, `offset` the character offset of the segment.
    """

    status: ClassVar[int] = 422
    reason: ClassVar[str] = "x12-invalid"
    title: ClassVar[str] = "Invalid X12"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        segment: int | None = None,
        element: int | None = None,
        offset: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.segment = segment
        self.element = element
        self.offset = offset

    def where(self) -> str:
        """Say where the error is, e.g. "segment 12, element 3"."""
        parts = []
        if self.segment is not None:
            parts.append(f"segment {self.segment}")
        if self.element is not None:
            parts.append(f"element {self.element}")
        return ", ".join(parts) or "file"
