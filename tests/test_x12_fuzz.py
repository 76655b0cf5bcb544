"""Whatever bytes arrive, the X12 reader answers with a reading or `X12Error`, nothing else.

Random bytes, valid interchanges cut short anywhere, and valid interchanges with characters
and elements replaced, inserted or deleted (delimiters among them). `decode_file` must not
raise at all, the acks it owes must render (or raise `X12Error`), and its report must encode
as the JSON `gateway edi inspect` prints. Derandomized and bounded.
"""

from __future__ import annotations

import contextlib
import datetime as dt

import hypothesis.strategies as st
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings

from canonical import sample_document
from canonical.x12 import (
    BY_DOCUMENT_TYPE,
    ControlNumbers,
    X12Error,
    X12Profile,
    X12Reading,
    decode_file,
    encode_interchange,
    render_acknowledgements,
    split_interchanges,
)

SUITE = settings(
    max_examples=400,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
AT = dt.datetime(2026, 3, 9, 8, 15, tzinfo=dt.UTC)
PROFILE = X12Profile(max_segments=5_000, max_segment_chars=512, max_elements=64)
ENCODER = msgspec.json.Encoder(enc_hook=str, decimal_format="string")

VALID = encode_interchange(
    [sample_document(t, 5) for t in sorted(BY_DOCUMENT_TYPE)],
    X12Profile(),
    ControlNumbers(interchange=9, group=9),
    at=AT,
).data

# Line breaks as terminators, pipes and ">" as separators, version 00501 (repetition "!").
VALID_PIPES = encode_interchange(
    [sample_document(t, 6) for t in sorted(BY_DOCUMENT_TYPE)],
    X12Profile(
        element_separator="|",
        component_separator=">",
        repetition_separator="!",
        segment_terminator="\n",
        line_break=False,
        version="005010",
    ),
    ControlNumbers(interchange=10, group=10),
    at=AT,
).data

# Characters that matter to the reader: delimiters, blanks, digits, segment ids' letters.
INTERESTING = st.sampled_from(list(b"*~:^|>!\r\n \t0123456789ISAGETHLN-."))


def read_anything(data: bytes) -> X12Reading:
    with contextlib.suppress(X12Error):
        split_interchanges(data, PROFILE.limits)
    reading = decode_file(data, file_name="fuzz.x12", sha256="0" * 64, profile=PROFILE)
    with contextlib.suppress(X12Error):
        render_acknowledgements(reading, ControlNumbers(interchange=1, group=1), at=AT)
    ENCODER.encode([reading.interchanges, reading.problems, reading.functional_acks])
    # The mappings' last-resort guard (reading.py) must never be what caught a value.
    assert not [p for p in reading.problems if p.detail.startswith("unreadable value")]
    return reading


@SUITE
@given(st.binary(max_size=2_000))
def test_random_bytes_give_a_reading(data: bytes) -> None:
    read_anything(data)


@SUITE
@given(st.binary(max_size=300).map(lambda tail: b"ISA*" + tail))
def test_random_bytes_after_isa_give_a_reading(data: bytes) -> None:
    read_anything(data)


@SUITE
@given(st.integers(0, len(VALID)))
def test_an_interchange_cut_anywhere_gives_a_reading(cut: int) -> None:
    reading = read_anything(VALID[:cut])
    if cut < len(VALID) - 1:  # all but the final terminator (or line break) gone
        assert not reading.accepted


edits = st.lists(
    st.tuples(
        st.sampled_from(["replace", "insert", "delete"]),
        st.integers(0, len(VALID) - 1),
        INTERESTING | st.integers(0, 255),
    ),
    min_size=1,
    max_size=6,
)


@SUITE
@given(st.sampled_from([VALID, VALID_PIPES]), edits)
def test_an_interchange_with_characters_changed_gives_a_reading(
    base: bytes, changes: list[tuple[str, int, int]]
) -> None:
    data = bytearray(base)
    for kind, at, byte in changes:
        at = min(at, len(data) - 1)
        if kind == "replace":
            data[at] = byte
        elif kind == "insert":
            data.insert(at, byte)
        elif len(data) > 1:
            del data[at]
    read_anything(bytes(data))


SEGMENTS = VALID.split(b"~\n")
NASTY_VALUES = [b"", b"-1", b"ZZ", b"0", b"9" * 29, b"0." + b"9" * 27, b"-." + b"1" * 20, b"1e5"]


@SUITE
@given(
    st.lists(
        st.tuples(
            st.integers(0, len(SEGMENTS) - 1),
            st.integers(1, 12),
            st.binary(max_size=20) | st.sampled_from(NASTY_VALUES),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_an_interchange_with_elements_changed_gives_a_reading(
    changes: list[tuple[int, int, bytes]],
) -> None:
    segments = [segment.split(b"*") for segment in SEGMENTS]
    for index, element, value in changes:
        fields = segments[index]
        if element < len(fields):
            fields[element] = value.replace(b"~", b"").replace(b"*", b"")
        else:
            fields.append(value)
    read_anything(b"~\n".join(b"*".join(fields) for fields in segments))


@SUITE
@given(st.permutations(range(2, len(SEGMENTS) - 2)))
def test_segments_out_of_order_give_a_reading(order: list[int]) -> None:
    body = [SEGMENTS[i] for i in order]
    read_anything(b"~\n".join([SEGMENTS[0], SEGMENTS[1], *body, *SEGMENTS[-2:]]))


@pytest.mark.parametrize("base", [VALID, VALID_PIPES], ids=["default", "pipes"])
def test_the_unchanged_interchange_is_accepted(base: bytes) -> None:
    assert read_anything(base).accepted
