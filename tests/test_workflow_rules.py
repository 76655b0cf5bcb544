"""The purchase-order thread's rules as pure functions: state + input -> state, events, timers."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from workflow_documents import (
    REQUESTED,
    SUPPLIER,
    T0,
    ack,
    arrived,
    asn,
    change,
    delivered,
    invoice,
    order,
    ordered,
    price,
    receipt,
    released,
)

from actors.workflow.inputs import DocumentArrived, ThreadInput, ThreadKey, TimerFired
from actors.workflow.rules import Context, Step, apply
from actors.workflow.rules._draft import day_start
from actors.workflow.state import ThreadState, decode_state, encode_state
from actors.workflow.tolerances import Tolerances
from canonical import (
    Document,
    ExceptionNotice,
    InboundShipment,
    InvoiceMatch,
    PurchaseOrderChangeLine,
    PurchaseOrderStatus,
    Quantity,
    ReceiptDiscrepancy,
    encode_document,
)

PO = order(1)
KEY = ThreadKey(SUPPLIER, PO.po_number)
HOUR = 3600.0
D = Decimal


def context(at: float = T0, **tolerances: object) -> Context:
    return Context(key=KEY, now=at, tolerances=Tolerances(**tolerances))  # type: ignore[arg-type]


def run(*inputs: ThreadInput, state: ThreadState | None = None, **tolerances: object) -> Step:
    """Apply `inputs` in turn; the returned step is the last one's, with its state."""
    current = state or ThreadState.new(KEY)
    step = Step(state=current)
    for i, item in enumerate(inputs):
        step = apply(current, item, context(T0 + i, **tolerances))
        current = step.state
    return step


def documents(step: Step) -> list[Document]:
    return [event.document for event in step.events]


def exceptions(step: Step) -> list[ExceptionNotice]:
    return [d for d in documents(step) if isinstance(d, ExceptionNotice)]


def kinds(step: Step) -> list[str]:
    return [e.kind for e in exceptions(step)]


def acknowledged(**ack_args: object) -> ThreadState:
    return run(released(PO), arrived(ack(PO, **ack_args))).state  # type: ignore[arg-type]


# The order and its delivery


def test_a_released_order_starts_the_thread_and_arms_the_shipment_and_receipt_deadlines() -> None:
    step = run(released(PO))

    assert step.state.status == "released"
    assert step.state.correlation_id == "corr-po"
    assert step.events == ()  # the ERP released it: nothing to tell it
    assert {a.kind: a.due_at for a in step.arm} == {
        "shipment_due": day_start(REQUESTED - dt.timedelta(days=1)),
        "receipt_due": day_start(REQUESTED + dt.timedelta(days=2)),
    }


def test_the_order_delivered_to_the_supplier_starts_the_acknowledgement_clock() -> None:
    step = run(released(PO), delivered(PO, at=T0 + 60), ack_sla_hours=4)

    assert step.state.status == "sent"
    assert [a.kind for a in step.arm] == ["acknowledgement_due"]
    assert step.arm[0].due_at == T0 + 60 + 4 * HOUR
    (status,) = documents(step)
    assert isinstance(status, PurchaseOrderStatus)
    assert (status.previous_status, status.status) == ("released", "sent")


def test_an_order_that_could_not_be_delivered_is_an_error_exception() -> None:
    step = run(released(PO), delivered(PO, at=T0 + 60, outcome="dead"))

    assert kinds(step) == ["delivery_failed"]
    assert exceptions(step)[0].severity == "error"
    assert step.state.status == "released"


def test_changes_cancel_and_change_lines() -> None:
    lines = (
        PurchaseOrderChangeLine(line_number=1, change="cancel", sku=PO.lines[0].sku),
        PurchaseOrderChangeLine(
            line_number=2,
            change="change",
            sku=PO.lines[1].sku,
            quantity=Quantity(value=D(30), uom="EA"),
        ),
    )
    step = run(released(PO), arrived(change(PO, 1, lines), partner="erp"))

    assert step.state.lines[1].cancelled
    assert step.state.lines[2].quantity == D(30)
    assert step.state.changes == (1,)


# The acknowledgement


def test_an_acknowledgement_as_ordered_raises_nothing_and_cancels_the_ack_deadline() -> None:
    step = run(released(PO), delivered(PO, at=T0), arrived(ack(PO)))

    assert kinds(step) == []
    assert step.state.status == "acknowledged"
    assert step.cancel == ("acknowledgement_due",)
    assert isinstance(documents(step)[0], PurchaseOrderStatus)


@pytest.mark.parametrize(
    ("promised", "tolerances", "raised"),
    [
        (D(12), {}, False),
        (D(13), {}, True),
        (D(13), {"quantity_percent": D(10)}, False),  # 1.2 allowed
        (D(14), {"quantity_percent": D(10)}, True),
        (D(14), {"quantity_units": D(2)}, False),
        (D(10), {"quantity_units": D(2)}, False),  # short counts the same as over
        (D(9), {"quantity_units": D(2), "quantity_percent": D(20)}, True),  # max(2.4, 2)
        (D("9.6"), {"quantity_units": D(2), "quantity_percent": D(20)}, False),
    ],
)
def test_acknowledged_quantity_outside_tolerance_is_a_quantity_discrepancy(
    promised: Decimal, tolerances: dict[str, object], raised: bool
) -> None:
    step = run(released(PO), arrived(ack(PO, quantities={1: promised})), **tolerances)

    assert kinds(step) == (["quantity_discrepancy"] if raised else [])
    if raised:
        assert exceptions(step)[0].line_number == 1
        assert exceptions(step)[0].po_number == PO.po_number


@pytest.mark.parametrize(
    ("days_late", "slack", "raised"), [(0, 0, False), (1, 0, True), (3, 3, False), (4, 3, True)]
)
def test_a_promised_date_later_than_requested_beyond_the_slack_is_an_exception(
    days_late: int, slack: int, raised: bool
) -> None:
    promised = REQUESTED + dt.timedelta(days=days_late)
    step = run(
        released(PO),
        arrived(ack(PO, dates={2: promised})),
        promised_date_slack_days=slack,
    )

    assert kinds(step) == (["promised_date_late"] if raised else [])


@pytest.mark.parametrize(
    ("confirmed", "tolerance", "raised"),
    [(D("12.50"), D(0), False), (D("12.60"), D(0), True), (D("12.60"), D(1), False)],
)
def test_a_confirmed_price_beyond_tolerance_is_a_price_mismatch(
    confirmed: Decimal, tolerance: Decimal, raised: bool
) -> None:
    step = run(released(PO), arrived(ack(PO, prices={2: confirmed})), price_percent=tolerance)

    assert kinds(step) == (["price_mismatch"] if raised else [])


def test_a_rejected_line_is_an_exception() -> None:
    step = run(released(PO), arrived(ack(PO, rejected=(3,))))

    assert kinds(step) == ["rejected_line"]
    assert step.state.acks[3].status == "reject"


@pytest.mark.parametrize("extra", [(4, "SKU-NOPE"), (2, "SKU-WRONG")])
def test_an_acknowledged_line_or_sku_the_order_lacks_is_an_unknown_line(
    extra: tuple[int, str],
) -> None:
    base = ack(PO)
    if extra[0] == 2:  # the order's line 2, with another SKU
        wrong = msgspec.structs.replace(base.lines[1], sku=extra[1])
        document = msgspec.structs.replace(base, lines=(base.lines[0], wrong, base.lines[2]))
    else:
        document = ack(PO, extra_line=extra)
    step = run(released(PO), arrived(document))

    assert kinds(step) == ["unknown_line"]
    assert exceptions(step)[0].line_number == extra[0]


def test_the_same_acknowledgement_again_changes_nothing() -> None:
    first = run(released(PO), arrived(ack(PO, quantities={1: D(99)})))
    again = apply(first.state, arrived(ack(PO, quantities={1: D(99)})), context())

    assert msgspec.structs.replace(again.state, applied=first.state.applied) == first.state
    assert again.events == ()


def test_a_second_different_acknowledgement_is_a_duplicate_document_and_not_applied() -> None:
    first = run(released(PO), arrived(ack(PO, number="ACK-1")))
    second = apply(first.state, arrived(ack(PO, number="ACK-2", rejected=(1,))), context())

    assert kinds(second) == ["duplicate_document"]
    assert second.state.acks == first.state.acks


# Shipments


def test_a_split_shipment_adds_up_and_tells_the_warehouse_each_time() -> None:
    state = acknowledged()
    one = apply(state, arrived(asn("ASN-1", PO, {1: D(12), 2: D(10)})), context())
    two = apply(one.state, arrived(asn("ASN-2", PO, {2: D(14), 3: D(36)})), context())

    assert kinds(one) == kinds(two) == []
    assert two.state.shipped == {1: D(12), 2: D(24), 3: D(36)}
    (first_event, status) = documents(one)
    assert isinstance(first_event, InboundShipment)
    assert isinstance(status, PurchaseOrderStatus)
    assert status.status == "shipped"
    (second_event,) = documents(two)
    assert isinstance(second_event, InboundShipment)
    assert [(line.po_line_number, line.shipped_to_date) for line in second_event.lines] == [
        (2, D(24)),
        (3, D(36)),
    ]


@pytest.mark.parametrize(
    ("shipped", "tolerances", "raised"),
    [
        ((D(12),), {}, False),
        ((D(6), D(7)), {}, True),  # 13 of 12 across two ASNs
        ((D(6), D(7)), {"quantity_units": D(1)}, False),
        ((D(14),), {"quantity_percent": D(10)}, True),
    ],
)
def test_shipping_more_than_acknowledged_beyond_tolerance_is_an_over_shipment(
    shipped: tuple[Decimal, ...], tolerances: dict[str, object], raised: bool
) -> None:
    state = run(released(PO), arrived(ack(PO)), **tolerances).state
    found: list[str] = []
    for i, quantity in enumerate(shipped):
        step = apply(state, arrived(asn(f"ASN-{i}", PO, {1: quantity})), context(**tolerances))
        state = step.state
        found += kinds(step)

    assert found == (["over_shipment"] if raised else [])


def test_the_limit_is_the_acknowledged_quantity_not_the_ordered_one() -> None:
    state = acknowledged(quantities={1: D(10)})
    step = apply(state, arrived(asn("ASN-1", PO, {1: D(12)})), context())

    assert kinds(step) == ["over_shipment"]


def test_shipping_before_the_acknowledgement_is_a_warning_and_still_counts() -> None:
    step = run(released(PO), arrived(asn("ASN-1", PO, {1: D(12)})))

    assert kinds(step) == ["shipped_before_acknowledged"]
    assert exceptions(step)[0].severity == "warning"
    assert step.state.shipped == {1: D(12)}


def test_a_ship_date_past_the_promised_date_is_a_late_shipment() -> None:
    state = acknowledged(dates={1: REQUESTED - dt.timedelta(days=3)})
    step = apply(state, arrived(asn("ASN-1", PO, {1: D(12)})), context())

    assert kinds(step) == ["late_shipment"]


def test_an_asn_line_the_order_lacks_is_an_unknown_line_and_not_counted() -> None:
    state = acknowledged()
    step = apply(
        state, arrived(asn("ASN-1", PO, {1: D(12), 9: D(1)}, skus={9: "SKU-X"})), context()
    )

    assert kinds(step) == ["unknown_line"]
    assert step.state.shipped == {1: D(12)}


def test_an_asn_number_reused_for_other_goods_is_a_duplicate_document() -> None:
    state = acknowledged()
    one = apply(state, arrived(asn("ASN-1", PO, {1: D(12)})), context())
    two = apply(one.state, arrived(asn("ASN-1", PO, {2: D(24)})), context())

    assert kinds(two) == ["duplicate_document"]
    assert two.state.shipped == one.state.shipped


def test_an_asn_for_several_orders_counts_only_this_threads_lines() -> None:
    state = acknowledged()
    step = apply(
        state,
        arrived(asn("ASN-1", PO, {1: D(12)}, more_orders=(("PO-OTHER", {1: D(500)}),))),
        context(),
    )

    assert kinds(step) == []
    assert step.state.shipped == {1: D(12)}


# Receipts


def shipped_state() -> ThreadState:
    state = acknowledged()
    return apply(state, arrived(asn("ASN-1", PO, {1: D(12), 2: D(24)})), context()).state


@pytest.mark.parametrize(
    ("counted", "damaged", "gap"),
    [
        ({1: (D(12), D(12)), 2: (D(24), D(24))}, {}, None),
        ({1: (D(12), D(11)), 2: (D(24), D(24))}, {}, (1, D(1), D(0), D(0))),
        ({1: (D(12), D(13)), 2: (D(24), D(24))}, {}, (1, D(0), D(1), D(0))),
        ({1: (D(12), D(12)), 2: (D(24), D(24))}, {2: D(2)}, (2, D(0), D(0), D(2))),
        ({1: (D(12), D(12))}, {}, (2, D(24), D(0), D(0))),  # line 2 never counted
    ],
)
def test_a_receipt_short_over_or_damaged_against_its_asn_is_a_discrepancy(
    counted: dict[int, tuple[Decimal, Decimal]],
    damaged: dict[int, Decimal],
    gap: tuple[int, Decimal, Decimal, Decimal] | None,
) -> None:
    step = apply(
        shipped_state(),
        arrived(receipt("GR-1", PO, counted, asn_number="ASN-1", damaged=damaged)),
        context(),
    )

    found = [d for d in documents(step) if isinstance(d, ReceiptDiscrepancy)]
    assert step.state.status == "received"
    if gap is None:
        assert found == []
        return
    (discrepancy,) = found
    (line,) = discrepancy.lines
    assert (
        line.po_line_number,
        line.short_quantity,
        line.over_quantity,
        line.damaged_quantity,
    ) == gap
    assert [e.kind for e in step.state.exceptions] == ["receipt_discrepancy"]


def test_a_receipt_before_its_asn_waits_for_it_then_is_compared_with_it() -> None:
    state = acknowledged()
    early = apply(
        state,
        arrived(receipt("GR-1", PO, {1: (D(12), D(11))}, asn_number="ASN-1")),
        context(),
    )
    assert early.events == ()
    assert [p.message_id for p in early.state.parked] != []
    assert [a.kind for a in early.arm] == ["park_expiry"]

    later = apply(early.state, arrived(asn("ASN-1", PO, {1: D(12)})), context())

    assert later.state.parked == ()
    assert "park_expiry" in later.cancel
    assert [type(d).__name__ for d in documents(later)] == [
        "InboundShipment",
        "PurchaseOrderStatus",  # shipped
        "ReceiptDiscrepancy",
        "PurchaseOrderStatus",  # received
    ]


# The three-way match


def received_state() -> ThreadState:
    return apply(
        shipped_state(),
        arrived(receipt("GR-1", PO, {1: (D(12), D(12)), 2: (D(24), D(24))}, asn_number="ASN-1")),
        context(),
    ).state


def match_of(step: Step) -> InvoiceMatch:
    (found,) = [d for d in documents(step) if isinstance(d, InvoiceMatch)]
    return found


def test_an_invoice_at_the_ordered_price_for_what_was_received_is_matched() -> None:
    step = apply(
        received_state(),
        arrived(invoice("INV-1", PO, {1: (D(12), price(PO, 1)), 2: (D(24), price(PO, 2))})),
        context(),
    )

    assert match_of(step).result == "matched"
    assert step.state.status == "matched"


@pytest.mark.parametrize(
    ("billed", "tolerances", "reasons"),
    [
        ({1: (D(12), D("4.50"))}, {}, ["price"]),
        ({1: (D(12), D("4.30"))}, {"price_percent": D(2)}, []),
        ({1: (D(13), D("4.25"))}, {}, ["quantity_not_received"]),
        ({3: (D(1), D("0.99"))}, {}, ["quantity_not_received"]),  # line 3 never received
        ({1: (D(13), D("4.50"))}, {}, ["price", "quantity_not_received"]),
    ],
)
def test_an_invoice_above_price_or_received_quantity_is_held_with_every_reason(
    billed: dict[int, tuple[Decimal, Decimal]], tolerances: dict[str, object], reasons: list[str]
) -> None:
    step = apply(received_state(), arrived(invoice("INV-1", PO, billed)), context(**tolerances))

    result = match_of(step)
    assert [issue.reason for issue in result.issues] == reasons
    assert result.result == ("held" if reasons else "matched")


def test_a_second_invoice_for_the_same_receipt_is_held_as_a_duplicate() -> None:
    first = apply(
        received_state(), arrived(invoice("INV-1", PO, {1: (D(6), price(PO, 1))})), context()
    )
    second = apply(first.state, arrived(invoice("INV-2", PO, {1: (D(6), price(PO, 1))})), context())

    assert match_of(first).result == "matched"
    assert [issue.reason for issue in match_of(second).issues] == ["duplicate_invoice"]


def test_a_fully_invoiced_order_closes_and_drops_its_deadlines() -> None:
    state = received_state()
    state = apply(state, arrived(asn("ASN-2", PO, {3: D(36)})), context()).state
    state = apply(
        state, arrived(receipt("GR-2", PO, {3: (D(36), D(36))}, asn_number="ASN-2")), context()
    ).state
    billed = {n: (ordered(PO, n), price(PO, n)) for n in (1, 2, 3)}
    step = apply(state, arrived(invoice("INV-1", PO, billed)), context())

    assert step.state.status == "closed"
    assert step.state.timers == {}


# Out of order


def test_an_acknowledgement_for_an_unknown_order_waits_for_it_then_is_applied() -> None:
    early = run(arrived(ack(PO, quantities={1: D(99)})))
    assert early.state.status == "awaiting_order"
    assert early.events == ()
    assert [a.kind for a in early.arm] == ["park_expiry"]

    step = apply(early.state, released(PO), context())

    assert kinds(step) == ["quantity_discrepancy"]
    assert step.state.status == "acknowledged"
    assert "park_expiry" in step.cancel


def test_what_waited_for_an_order_that_never_came_becomes_an_exception() -> None:
    early = run(arrived(ack(PO)), arrived(asn("ASN-1", PO, {1: D(12)})), park_hours=2)
    due = early.state.timers["park_expiry"]
    assert due == T0 + 2 * HOUR

    step = apply(early.state, TimerFired.of("park_expiry", 1, due), context(due))

    assert kinds(step) == ["unknown_purchase_order", "unknown_purchase_order"]
    assert {e.reference.document_type for e in exceptions(step)} == {
        "purchase_order_ack",
        "advance_ship_notice",
    }
    assert step.state.parked == ()


def test_a_delivery_outcome_before_the_order_waits_for_it() -> None:
    early = run(delivered(PO, at=T0))
    step = apply(early.state, released(PO), context())

    assert step.state.status == "sent"
    assert "acknowledgement_due" in step.state.timers


# Deadlines


def test_no_acknowledgement_within_the_sla_raises_one_late_acknowledgement() -> None:
    state = run(released(PO), delivered(PO, at=T0), ack_sla_hours=1).state
    due = state.timers["acknowledgement_due"]
    fired = TimerFired.of("acknowledgement_due", 1, due)

    step = apply(state, fired, context(due))
    again = apply(step.state, fired, context(due + 5))

    assert kinds(step) == ["late_acknowledgement"]
    assert again.events == ()


def test_a_deadline_met_in_time_was_cancelled_and_a_stale_firing_does_nothing() -> None:
    state = run(released(PO), delivered(PO, at=T0), arrived(ack(PO)), ack_sla_hours=1).state

    step = apply(state, TimerFired.of("acknowledgement_due", 1, T0 + HOUR), context())

    assert "acknowledgement_due" not in state.timers
    assert step.events == ()


@pytest.mark.parametrize(
    ("kind", "raised"), [("shipment_due", "late_asn"), ("receipt_due", "late_receipt")]
)
def test_no_asn_or_no_receipt_by_its_deadline_is_an_exception(kind: str, raised: str) -> None:
    state = acknowledged()
    due = state.timers[kind]  # type: ignore[index]
    step = apply(state, TimerFired.of(kind, 1, due), context(due))  # type: ignore[arg-type]

    assert kinds(step) == [raised]


# Events, ids, state


def test_events_ids_are_derived_from_the_thread_and_the_input() -> None:
    a = run(released(PO), arrived(ack(PO, rejected=(1, 2)), message_id="ack-1"))
    b = run(released(PO), arrived(ack(PO, rejected=(1, 2)), message_id="ack-1"))

    assert [e.message_id for e in a.events] == [e.message_id for e in b.events]
    assert len({e.message_id for e in a.events}) == len(a.events) == 3
    assert {e.causation_id for e in a.events} == {"ack-1"}
    assert all(
        e.exception_id == ev.message_id for e, ev in zip(exceptions(a), a.events, strict=False)
    )


def test_the_state_survives_its_encoding() -> None:
    state = run(
        arrived(asn("ASN-9", PO, {1: D(1)})), released(PO), arrived(ack(PO, rejected=(2,)))
    ).state

    assert decode_state(encode_state(state)) == state


def test_every_emitted_document_encodes() -> None:
    step = run(
        released(PO),
        delivered(PO, at=T0),
        arrived(ack(PO, quantities={1: D(1)})),
    )
    for document in documents(step):
        assert encode_document(document)


# Properties


def _inputs() -> list[ThreadInput]:
    return [
        released(PO),
        delivered(PO, at=T0),
        arrived(ack(PO, quantities={1: D(13)})),
        arrived(asn("ASN-1", PO, {1: D(6), 2: D(24)})),
        arrived(asn("ASN-2", PO, {1: D(7)})),
        arrived(receipt("GR-1", PO, {1: (D(6), D(5))}, asn_number="ASN-1")),
        arrived(receipt("GR-2", PO, {1: (D(7), D(7))}, asn_number="ASN-2")),
        arrived(invoice("INV-1", PO, {1: (D(12), D("4.25"))})),
        arrived(invoice("INV-2", PO, {2: (D(24), D("13.00"))})),
    ]


INPUTS = _inputs()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(range(len(INPUTS))), max_size=12), st.sampled_from(range(len(INPUTS)))
)
def test_applying_an_input_twice_is_applying_it_once(history: list[int], last: int) -> None:
    state = ThreadState.new(KEY)
    for i in history:
        state = apply(state, INPUTS[i], context()).state
    once = apply(state, INPUTS[last], context())
    twice = apply(once.state, INPUTS[last], context())

    assert twice.state == once.state
    assert twice.events == ()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(range(len(INPUTS))), max_size=12), st.sampled_from(range(len(INPUTS)))
)
def test_the_same_document_resent_under_a_new_message_id_changes_nothing(
    history: list[int], last: int
) -> None:
    state = ThreadState.new(KEY)
    for i in history:
        state = apply(state, INPUTS[i], context()).state
    item = INPUTS[last]
    if not isinstance(item, DocumentArrived):
        return  # a delivery outcome under another id is another outcome, not a resend
    once = apply(state, item, context())
    resent = msgspec.structs.replace(item, message_id=f"{item.message_id}-resent")
    again = apply(once.state, resent, context())

    assert msgspec.structs.replace(again.state, applied=once.state.applied) == once.state
    assert again.events == ()


@settings(max_examples=100, deadline=None)
@given(st.permutations(range(len(INPUTS))))
def test_whatever_the_arrival_order_every_input_leaves_the_thread_consistent(
    order_of: list[int],
) -> None:
    state = ThreadState.new(KEY)
    for i in order_of:
        state = apply(state, INPUTS[i], context()).state

    assert state.ordered
    assert state.parked == ()  # the order came, and every receipt's ASN
    assert state.shipped == {1: D(13), 2: D(24)}
    assert state.received == {1: D(12)}
