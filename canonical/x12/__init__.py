"""The X12 codec: partner EDI files to canonical documents and back, with the acks they owe.

Pure code, no I/O. `decode_file` reads a file (several interchanges, groups and sets) into an
`X12Reading`: a `canonical.files.FileDecoding` for the intake, the interchange keys the store
checks for replays, and the 997/999/TA1 owed, which `render_acknowledgements` writes with
control numbers from the store's sequences. `encode_interchange` writes documents out.
Only `X12Error` escapes this package.
"""

from canonical.x12.acks import AckGroup, PendingAck
from canonical.x12.envelope import GroupHeader, InterchangeHeader
from canonical.x12.errors import X12Error
from canonical.x12.notes import (
    ElementNote,
    GroupOutcome,
    InterchangeKey,
    SegmentNote,
    SetOutcome,
    Ta1,
)
from canonical.x12.profile import X12Profile
from canonical.x12.reading import decode_file
from canonical.x12.reconcile import SentOutcome, reconcile
from canonical.x12.render import ControlNumbers, SentSet, X12Outbound, encode_interchange
from canonical.x12.replies import duplicate_ta1, refuse_duplicate, render_acknowledgements
from canonical.x12.report import (
    GroupReport,
    InterchangeReport,
    SetReport,
    X12Problem,
    X12Reading,
)
from canonical.x12.sets import BY_DOCUMENT_TYPE, BY_SET_ID, SetMapping
from canonical.x12.syntax import Delimiters, Limits, Segment, split_interchanges

__all__ = [
    "BY_DOCUMENT_TYPE",
    "BY_SET_ID",
    "AckGroup",
    "ControlNumbers",
    "Delimiters",
    "ElementNote",
    "GroupHeader",
    "GroupOutcome",
    "GroupReport",
    "InterchangeHeader",
    "InterchangeKey",
    "InterchangeReport",
    "Limits",
    "PendingAck",
    "Segment",
    "SegmentNote",
    "SentOutcome",
    "SentSet",
    "SetMapping",
    "SetOutcome",
    "SetReport",
    "Ta1",
    "X12Error",
    "X12Outbound",
    "X12Problem",
    "X12Profile",
    "X12Reading",
    "decode_file",
    "duplicate_ta1",
    "encode_interchange",
    "reconcile",
    "refuse_duplicate",
    "render_acknowledgements",
    "split_interchanges",
]
