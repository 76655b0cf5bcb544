"""The acknowledgements a file is owed: 997 or 999 per group, TA1 per interchange.

997s carry AK3/AK4 for a rejected set and AK9 P when only some sets were accepted; their
envelope mirrors the inbound one; TA1 goes out when ISA14 asks or the envelope is at fault,
never for an interchange without transactions; a 997 is never acknowledged, but read back.
"""

from __future__ import annotations

import datetime as dt

import pytest
from x12_text import group, interchange, po_set

from canonical.x12 import (
    ControlNumbers,
    X12Profile,
    X12Reading,
    decode_file,
    render_acknowledgements,
)

AT = dt.datetime(2026, 3, 9, 10, 30, tzinfo=dt.UTC)
NUMBERS = ControlNumbers(interchange=501, group=601)


def read(text: str, profile: X12Profile | None = None) -> X12Reading:
    return decode_file(text.encode("latin-1"), file_name="in.x12", sha256="0" * 64, profile=profile)


def answers(reading: X12Reading) -> list[list[str]]:
    """Each rendered interchange as its segments, without terminators."""
    rendered = render_acknowledgements(reading, NUMBERS, at=AT)
    return [[s for s in data.decode("latin-1").split("~\n") if s] for data in rendered]


def test_a_997_names_the_bad_element_of_the_rejected_set_and_says_partially_accepted() -> None:
    bad = po_set("0002", order_date="20261345")
    reading = read(interchange([group([po_set("0001"), bad])]))
    (segments,) = answers(reading)
    start = segments.index("ST*997*0001")
    body, (se, ge, iea) = segments[start + 1 : -3], segments[-3:]
    assert body == [
        "AK1*PO*77",
        "AK2*850*0001",
        "AK5*A",
        "AK2*850*0002",
        "AK3*BEG*2**8",
        "AK4*5**8*20261345",
        "AK5*R*5",
        "AK9*P*2*2*1",
    ]
    assert se == f"SE*{len(body) + 2}*0001"
    assert (ge, iea) == ("GE*1*601", "IEA*1*000000501")
    # The rejected set is also a problem naming file segment and element for the intake.
    (problem,) = reading.decoding.problems
    assert problem.provenance.transaction_set == "0002"
    assert problem.errors[0].path == "segment 13, element 5"


@pytest.mark.parametrize(
    ("change", "ak3", "ak4"),
    [
        (
            ("PO1*1*12*EA*4.25**BP*SKU-1", "PO1*1*12*EA*4.25**BP*SKU 1"),
            "AK3*PO1*6*PO1*8",
            "AK4*7**6*SKU 1",
        ),
        (("PO1*1*12*EA*4.25", "PO1*1*12*EA*4,25"), "AK3*PO1*6*PO1*8", "AK4*4**6*4,25"),
        (("PO1*1*12*EA*4.25", "PO1**12*EA*4.25"), "AK3*PO1*6*PO1*8", "AK4*1**1"),
        (("BEG*00*SA*PO-1**20260302", "BXX*00"), "AK3*BEG*2**3", None),
        (("SE*9*0001", "ZZZZ~\nSE*10*0001"), "AK3*ZZZ*9**1", None),
    ],
    ids=["canonical pattern", "not a number", "mandatory element", "missing BEG", "unknown id"],
)
def test_the_ak3_and_ak4_say_which_segment_and_element_and_why(
    change: tuple[str, str], ak3: str, ak4: str | None
) -> None:
    reading = read(interchange([group([po_set("0001")])]).replace(*change))
    ((*_, ak9, _se, _ge, _iea),) = answers(reading)
    segments = answers(reading)[0]
    assert ak3 in segments
    if ak4 is not None:
        assert segments[segments.index(ak3) + 1] == ak4
    assert "AK5*R*5" in segments
    assert ak9 == "AK9*R*1*1*0"


def test_a_set_nobody_maps_is_rejected_as_not_supported() -> None:
    text = interchange([group([["ST*940*0001", "W05*N*1", "SE*3*0001"]], functional_id="OW")])
    segments = answers(read(text))[0]
    assert segments[-7:-3] == ["AK1*OW*77", "AK2*940*0001", "AK5*R*1", "AK9*R*1*1*0"]


def test_the_997_envelope_mirrors_the_inbound_one() -> None:
    text = interchange([group([po_set("0001")], version="005010")], version="00501")
    isa, gs, *_ = answers(read(text))[0]
    assert isa.split("*")[5:9] == ["ZZ", "DISTCO         ", "ZZ", "ACMESUPPLY     "]
    assert isa.split("*")[11:16] == ["^", "00501", "000000501", "0", "P"]
    assert gs == "GS*FA*DISTCO*ACMESUPPLY*20260309*1030*601*X*005010"


def test_one_997_per_group_numbered_from_the_sequences_given() -> None:
    text = interchange([group([po_set("0001")], "1"), group([po_set("0001")], "2")])
    reading = read(text + interchange([group([po_set("0001")])], "000000906"))
    assert reading.control_numbers_needed == (2, 3)
    first, second = answers(reading)
    assert [s for s in first if s.startswith(("GS", "AK1", "IEA"))] == [
        "GS*FA*DISTCO*ACMESUPPLY*20260309*1030*601*X*004010",
        "AK1*PO*1",
        "GS*FA*DISTCO*ACMESUPPLY*20260309*1030*602*X*004010",
        "AK1*PO*2",
        "IEA*2*000000501",
    ]
    assert second[0].split("*")[13] == "000000502"
    assert second[1].split("*")[6] == "603"


def test_a_999_for_partners_configured_so() -> None:
    bad = po_set("0001", order_date="20261345")
    reading = read(interchange([group([bad])]), X12Profile(acknowledgement="999"))
    segments = answers(reading)[0]
    body = segments[segments.index("ST*999*0001") + 1 : -3]
    assert body == [
        "AK1*PO*77*004010",
        "AK2*850*0001",
        "IK3*BEG*2**8",
        "IK4*5**8*20261345",
        "IK5*R*5",
        "AK9*R*1*1*0",
    ]


def test_isa14_asks_for_a_ta1_and_gets_one_beside_the_997() -> None:
    segments = answers(read(interchange([group([po_set("0001")])], ack="1")))[0]
    assert segments[1] == "TA1*000000905*260309*0815*A*000"
    assert "ST*997*0001" in segments


def test_an_envelope_at_fault_gets_a_ta1_and_no_997() -> None:
    text = interchange([group([po_set("0001")])]).replace("IEA*1*000000905", "IEA*1*000000999")
    (segments,) = answers(read(text))
    assert segments[1:] == ["TA1*000000905*260309*0815*R*001", "IEA*0*000000501"]


@pytest.mark.parametrize("ack", ["0", "1"])
def test_no_ta1_for_an_interchange_without_transactions(ack: str) -> None:
    empty = interchange([], ack=ack)
    broken = empty.replace("IEA*0*000000905", "IEA*0*000000999")
    for text in (empty, broken):
        reading = read(text)
        assert reading.acknowledgements == ()
        assert answers(reading) == []


def _ack_for(text: str) -> str:
    (rendered,) = render_acknowledgements(read(text), NUMBERS, at=AT)
    return rendered.decode("latin-1")


def test_a_997_received_is_never_acknowledged_but_read_back_by_group_and_set() -> None:
    ours = interchange([group([po_set("0001"), po_set("0002", order_date="20261345")], "88")])
    their_997 = _ack_for(ours)  # what a partner would answer to what we sent
    reading = read(their_997)
    assert reading.acknowledgements == ()
    (outcome,) = reading.functional_acks
    assert (outcome.functional_id, outcome.control_number, outcome.status) == ("PO", "88", "P")
    assert [(s.control_number, s.accepted) for s in outcome.sets] == [
        ("0001", True),
        ("0002", False),
    ]
    (note,) = outcome.sets[1].notes
    assert (note.segment_id, note.position, note.code) == ("BEG", 2, "8")
    assert [(e.position, e.code, e.data) for e in note.elements] == [(5, "8", "20261345")]


def test_a_999_received_is_read_back_the_same_way() -> None:
    ours = interchange([group([po_set("0001", order_date="20261345")], "88")])
    reading = read(
        _ack_for(ours)
        .replace("ST*997", "ST*999")
        .replace("AK3", "IK3")
        .replace("AK4", "IK4")
        .replace("AK5", "IK5")
    )
    (outcome,) = reading.functional_acks
    assert [(s.accepted, s.codes) for s in outcome.sets] == [(False, ("5",))]
    assert outcome.sets[0].notes[0].elements[0].position == 5


@pytest.mark.parametrize(
    ("dropped", "ak3"),
    [
        (("CUR",), "AK3*CUR*2**3"),
        (("N1*BY",), "AK3*N1*2**3"),
        (("DTM",), "AK3*DTM*6*PO1*3"),
        (("PO1", "DTM"), "AK3*PO1*6**3"),
    ],
    ids=["CUR", "buyer's N1", "requested date", "every line"],
)
def test_a_segment_the_document_needs_is_reported_missing(
    dropped: tuple[str, ...], ak3: str
) -> None:
    st, *body, _se = po_set("0001")
    kept = [segment for segment in body if not segment.startswith(dropped)]
    one = [st, *kept, f"SE*{len(kept) + 2}*0001"]
    segments = answers(read(interchange([group([one])])))[0]
    assert ak3 in segments
    assert "AK5*R*5" in segments
