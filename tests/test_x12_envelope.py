"""The X12 reader's envelope: delimiters from each ISA, control numbers and counts checked.

An interchange at fault is rejected whole with its TA1 note and nothing behind it is read; a
group at fault has its sets rejected (AK9 code); a set at fault is rejected alone (AK5 code).
"""

from __future__ import annotations

import pytest
from x12_text import group, interchange, isa, po_set

from canonical.files import Provenance
from canonical.x12 import InterchangeKey, X12Profile, X12Reading, decode_file, refuse_duplicate


def read(text: str) -> X12Reading:
    return decode_file(text.encode("latin-1"), file_name="in.x12", sha256="ab" * 32)


GOOD = interchange([group([po_set("0001"), po_set("0002")])])


def test_a_sound_interchange_gives_its_documents_with_provenance() -> None:
    reading = read(GOOD)
    assert reading.accepted
    assert [d.provenance for d in reading.decoding.documents] == [
        Provenance(
            file="in.x12",
            sha256="ab" * 32,
            interchange="000000905",
            group="77",
            transaction_set=st,
        )
        for st in ("0001", "0002")
    ]
    assert reading.decoding.documents[0].document.po_number == "PO-1"  # type: ignore[union-attr]


def test_several_interchanges_groups_and_sets_in_one_file() -> None:
    first = interchange([group([po_set("0001")], "1"), group([po_set("0001")], "2")], "000000001")
    second = interchange([group([po_set("0001"), po_set("0002")], "1")], "000000002")
    reading = read(first + "\r\n" + second)
    assert reading.accepted
    where = [
        (d.provenance.interchange, d.provenance.group, d.provenance.transaction_set)
        for d in reading.decoding.documents
    ]
    assert where == [
        ("000000001", "1", "0001"),
        ("000000001", "2", "0001"),
        ("000000002", "1", "0001"),
        ("000000002", "1", "0002"),
    ]


def test_the_delimiters_are_the_ones_the_isa_declares() -> None:
    # Pipe elements, ">" components, a line break as terminator, CR before each one.
    text = GOOD.replace("~\n", "~").replace("*", "|").replace("~", "\r\n")
    text = text.replace("|P|:\r\n", "|P|>\r\n", 1)
    assert text.startswith(isa(separator="|", component=">", terminator="\r")[:105])
    assert read(text).accepted


def test_tabs_and_spaces_between_segments_are_tolerated() -> None:
    assert read(GOOD.replace("~\n", "~\n\t  ")).accepted


def test_every_interchange_gives_its_key_for_the_replay_check() -> None:
    assert read(GOOD).keys == (
        InterchangeKey(
            sender_qualifier="ZZ",
            sender_id="ACMESUPPLY",
            receiver_qualifier="ZZ",
            receiver_id="DISTCO",
            control_number="000000905",
        ),
    )


INTERCHANGE_FAULTS = {
    "IEA02 is not ISA13": (GOOD.replace("IEA*1*000000905", "IEA*1*000000906"), "001"),
    "IEA01 miscounts the groups": (GOOD.replace("IEA*1*", "IEA*2*"), "021"),
    "the file ends before the IEA": (GOOD[: GOOD.index("IEA")], "023"),
    "a segment outside any group": (GOOD.replace("GS*PO", "BEG*00~\nGS*PO", 1), "024"),
    "ISA13 is not a number": (GOOD.replace("*00000090", "*ABCDEFGH", 1), "018"),
}


@pytest.mark.parametrize(
    ("text", "note"), INTERCHANGE_FAULTS.values(), ids=list(INTERCHANGE_FAULTS)
)
def test_an_interchange_at_fault_is_rejected_whole_with_its_ta1_note(text: str, note: str) -> None:
    reading = read(text)
    assert reading.interchanges[0].note == note
    assert reading.decoding.documents == ()
    assert [p.reason for p in reading.decoding.problems] == ["x12_interchange_rejected"]
    assert reading.decoding.refused == f"x12: every interchange rejected (TA1 {note})"
    (pending,) = reading.acknowledgements
    assert pending.ta1 is not None
    assert (pending.ta1.status, pending.ta1.note) == ("R", note)
    assert pending.groups == ()  # nothing behind a rejected envelope is acknowledged


GROUP_FAULTS = {
    "GE02 is not GS06": (GOOD.replace("GE*2*77", "GE*2*78"), "4"),
    "GE01 miscounts the sets": (GOOD.replace("GE*2*77", "GE*3*77"), "5"),
    "the GE is missing": (GOOD.replace("GE*2*77~\n", ""), "3"),
}


@pytest.mark.parametrize(("text", "code"), GROUP_FAULTS.values(), ids=list(GROUP_FAULTS))
def test_a_group_at_fault_has_every_set_rejected(text: str, code: str) -> None:
    reading = read(text)
    assert reading.decoding.documents == ()
    (report,) = reading.interchanges[0].groups
    assert (report.status, report.codes) == ("R", (code,))
    assert {p.reason for p in reading.decoding.problems} == {"x12_set_rejected"}


SET_FAULTS = {
    "SE02 is not ST02": ("SE*9*0002", "SE*9*0009", "3"),
    "SE01 miscounts the segments": ("SE*9*0002", "SE*8*0002", "4"),
    "ST02 repeats one in the group": ("ST*850*0002", "ST*850*0001", "23"),
}


@pytest.mark.parametrize(("old", "new", "code"), SET_FAULTS.values(), ids=list(SET_FAULTS))
def test_a_set_at_fault_is_rejected_alone(old: str, new: str, code: str) -> None:
    text = GOOD.replace(old, new)
    if code == "23":
        text = text.replace("SE*9*0002", "SE*9*0001")
    reading = read(text)
    assert [d.provenance.transaction_set for d in reading.decoding.documents] == ["0001"]
    (report,) = reading.interchanges[0].groups
    assert report.status == "P"
    assert [(s.accepted, s.codes) for s in report.sets] == [(True, ()), (False, (code,))]


def test_a_set_without_its_se_is_rejected_with_code_2() -> None:
    reading = read(GOOD.replace("SE*9*0002~\n", ""))
    (report,) = reading.interchanges[0].groups
    assert [s.codes for s in report.sets] == [(), ("2",)]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (GOOD.replace("*", "|", 3), "026"),  # a separator that differs at an ISA boundary
        (GOOD[:60], "023"),  # an ISA cut short
        ("HELLO" + GOOD, "024"),  # not an ISA
        ("", "023"),
    ],
    ids=["separator", "short ISA", "garbage before", "empty"],
)
def test_a_file_that_cannot_be_split_is_refused_with_the_position(text: str, code: str) -> None:
    reading = read(text)
    assert reading.decoding.refused is not None
    assert reading.decoding.documents == ()
    (problem,) = reading.problems
    assert (problem.code, problem.segment) == (code, 1)


def test_an_interchange_repeated_in_one_file_is_refused_as_a_duplicate() -> None:
    reading = read(GOOD + GOOD)
    assert [i.note for i in reading.interchanges] == ["000", "025"]
    assert len(reading.decoding.documents) == 2


def test_a_replay_the_store_has_seen_is_dropped_and_answered_with_ta1_025() -> None:
    other = interchange([group([po_set("0001")], "5")], "000000906")
    reading = read(GOOD + other)
    seen = reading.keys[0]
    refused = refuse_duplicate(reading, seen)
    assert [d.provenance.interchange for d in refused.decoding.documents] == ["000000906"]
    assert "x12_duplicate_interchange" in [p.reason for p in refused.decoding.problems]
    answers = {a.interchange.control_number: a for a in refused.acknowledgements}
    duplicate = answers["000000905"]
    assert duplicate.groups == ()
    assert duplicate.ta1 is not None
    assert (duplicate.ta1.status, duplicate.ta1.note) == ("R", "025")
    assert answers["000000906"].groups  # the other interchange is still acknowledged
    assert refused.decoding.refused is None


def test_a_file_holding_only_a_replay_is_refused_whole() -> None:
    reading = read(GOOD)
    refused = refuse_duplicate(reading, reading.keys[0])
    assert refused.decoding.documents == ()
    assert refused.decoding.refused == "x12: interchange 000000905 already received (TA1 025)"


@pytest.mark.parametrize(
    ("sender", "receiver", "note"),
    [("ACMESUPPLY", "DISTCO", "000"), ("GLOBEX", "DISTCO", "006"), ("ACMESUPPLY", "OTHER", "008")],
    ids=["expected ids", "another sender", "another receiver"],
)
def test_a_profile_that_checks_ids_refuses_an_interchange_from_or_to_someone_else(
    sender: str, receiver: str, note: str
) -> None:
    profile = X12Profile(sender_id="DISTCO", receiver_id="ACMESUPPLY", check_interchange_ids=True)
    text = interchange([group([po_set("0001")])], sender=sender, receiver=receiver)
    reading = decode_file(text.encode(), file_name="in.x12", sha256="0" * 64, profile=profile)
    assert reading.interchanges[0].note == note
    assert len(reading.decoding.documents) == (1 if note == "000" else 0)


def test_a_line_feed_terminator_leaves_no_carriage_return_in_the_last_element() -> None:
    # The ISA ends in LF (the terminator), every other segment in CR LF.
    text = GOOD.replace("~\n", "\r\n").replace("P*:\r\n", "P*:\n", 1)
    reading = read(text)
    assert reading.accepted
    assert reading.decoding.documents[0].document.lines[0].requested_date  # type: ignore[union-attr]


def test_a_sound_interchange_beside_a_rejected_one_is_still_read() -> None:
    bad = interchange([group([po_set("0001")], "5")], "000000906").replace(
        "IEA*1*000000906", "IEA*1*000000907"
    )
    reading = read(GOOD + bad)
    assert reading.decoding.refused is None
    assert len(reading.decoding.documents) == 2
    assert [p.reason for p in reading.decoding.problems] == ["x12_interchange_rejected"]
