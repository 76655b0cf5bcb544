"""Each document sent as X12 ends up accepted, rejected (with AK3/AK4) or unacknowledged.

The partner's 997s here are made the way a partner would: by reading what the gateway sent
(one set spoiled on the way) and answering it.
"""

from __future__ import annotations

import datetime as dt

from x12_text import interchange

from canonical import sample_document
from canonical.x12 import (
    ControlNumbers,
    GroupOutcome,
    X12Outbound,
    X12Profile,
    decode_file,
    encode_interchange,
    reconcile,
    render_acknowledgements,
)

AT = dt.datetime(2026, 3, 9, 9, 0, tzinfo=dt.UTC)
# The gateway writes as DISTCO to ACMESUPPLY; the partner mirrors that in its 997.
OURS = X12Profile(sender_id="DISTCO", receiver_id="ACMESUPPLY")


def send() -> X12Outbound:
    documents = [
        sample_document("purchase_order", 1),
        sample_document("purchase_order", 2),
        sample_document("purchase_order_change", 1),
    ]
    return encode_interchange(documents, OURS, ControlNumbers(interchange=7, group=40), at=AT)


def partner_answers(data: bytes) -> list[GroupOutcome]:
    """What the partner's 997s say, as the gateway reads them back."""
    theirs = decode_file(data, file_name="their-inbox.x12", sha256="0" * 64)
    (ack,) = render_acknowledgements(theirs, ControlNumbers(interchange=900, group=900), at=AT)
    return list(decode_file(ack, file_name="997.x12", sha256="1" * 64).functional_acks)


def test_each_sent_set_is_accepted_or_rejected_with_the_partners_detail() -> None:
    sent = send()
    spoiled = sent.data.replace(
        b"BEG*00*SA*PO-0000002**20260302", b"BEG*00*SA*PO-0000002**2026030X"
    )
    outcomes = reconcile(sent.sets, partner_answers(spoiled))
    assert [(o.sent.set_id, o.sent.group, o.sent.transaction_set, o.status) for o in outcomes] == [
        ("850", "40", "0001", "accepted"),
        ("850", "40", "0002", "rejected"),
        ("860", "41", "0001", "accepted"),
    ]
    rejected = outcomes[1]
    assert rejected.codes == ("5",)
    (note,) = rejected.notes
    assert (note.segment_id, note.position, note.code) == ("BEG", 2, "8")
    assert [(e.position, e.code, e.data) for e in note.elements] == [(5, "8", "2026030X")]


def test_a_set_no_997_has_answered_is_unacknowledged() -> None:
    sent = send()
    only_orders = [g for g in partner_answers(sent.data) if g.control_number == "40"]
    assert [o.status for o in reconcile(sent.sets, only_orders)] == [
        "accepted",
        "accepted",
        "unacknowledged",
    ]


def test_a_997_without_set_loops_speaks_for_its_whole_group_by_its_ak9() -> None:
    sent = send()
    ak9s = {"A": "AK9*A*2*2*2", "R": "AK9*R*2*2*0*5"}
    statuses = {}
    for status, ak9 in ak9s.items():
        ack = ["ST*997*0001", "AK1*PO*40", ak9, "SE*4*0001"]
        gs = ["GS*FA*ACMESUPPLY*DISTCO*20260309*0900*5*X*004010", *ack, "GE*1*5"]
        (answer,) = decode_file(
            interchange([gs]).encode(), file_name="997.x12", sha256="0" * 64
        ).functional_acks
        statuses[status] = [(o.status, o.codes) for o in reconcile(sent.sets[:2], [answer])]
    assert statuses == {
        "A": [("accepted", ()), ("accepted", ())],
        "R": [("rejected", ("5",)), ("rejected", ("5",))],
    }
