"""The orders' status rows: reports in any order, and twice, end the same (a property test)."""

from __future__ import annotations

import sqlite3

from hypothesis import given, settings
from hypothesis import strategies as st

from canonical.sales import ORDER_STATES
from gateway.store.orders import MIGRATION, Milestone, apply_status, record_order

REPORTED = [s for s in ORDER_STATES if s not in ("received", "buffered")]
reports = st.lists(
    st.builds(
        Milestone,
        status=st.sampled_from(REPORTED),
        at=st.integers(min_value=0, max_value=5).map(float),
        milestone=st.sampled_from([None, "picked up", "out for delivery"]),
    ),
    min_size=1,
    max_size=8,
    unique=True,
)


def ledger() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    for statement in MIGRATION:
        conn.execute(statement)
    record_order("SO-1", "acme", "k", "m", 100.0, conn, 100.0)
    return conn


def applied(sequence: list[Milestone]) -> tuple[object, ...]:
    conn = ledger()
    for milestone in sequence:
        apply_status(milestone, "SO-1", conn, 200.0)
    row: tuple[object, ...] = conn.execute(
        "SELECT status, changed_at, milestones FROM customer_orders"
    ).fetchone()
    return row


@settings(derandomize=True, max_examples=300, deadline=None)
@given(reports=reports, data=st.data())
def test_any_interleaving_and_duplication_of_reports_ends_in_the_same_row(
    reports: list[Milestone], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(reports))
    repeated = data.draw(st.lists(st.sampled_from(reports), max_size=4))

    assert applied(list(shuffled) + repeated) == applied(reports)


def test_a_final_state_is_shown_over_a_later_report() -> None:
    row = applied([Milestone(status="cancelled", at=1.0), Milestone(status="shipped", at=2.0)])

    assert row[:2] == ("cancelled", 1.0)


def test_a_report_older_than_the_shown_one_is_kept_but_does_not_move_it_back() -> None:
    row = applied([Milestone(status="shipped", at=3.0), Milestone(status="confirmed", at=1.0)])

    assert row[:2] == ("shipped", 3.0)
    assert b'"confirmed"' in row[2]  # type: ignore[operator]
