"""`gateway demo`, run as an operator runs it: it plays one purchase-order thread and exits 0."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gateway.localbroker import LocalRabbitMQ

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]


@pytest.mark.timeout(300)
def test_the_demo_plays_a_thread_from_release_to_a_held_invoice_and_prints_its_trace(
    rabbitmq: LocalRabbitMQ,  # the demo starts a node of its own; this one says one can start
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "demo"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    out = done.stdout

    assert done.returncode == 0, done.stderr[-2000:]
    assert "(signature verified): purchase_order PO-0000042" in out  # the supplier's desk
    messages = out[out.index("the thread's messages") : out.index("$ gateway trace")]
    assert [line.split()[0] for line in messages.splitlines()[1:] if line.strip()] == [
        "purchase_order.erp",
        "purchase_order_status.acme",
        "exception.acme",
        "purchase_order_status.acme",
        "inbound_shipment.acme",
        "purchase_order_status.acme",
        "inbound_shipment.acme",
        "receipt_discrepancy.acme",
        "purchase_order_status.acme",
        "invoice_match.acme",
        "purchase_order_status.acme",
    ]
    trace = out[out.index("$ gateway trace PO-0000042") :]
    assert "status invoiced" in trace
    assert "quantity_discrepancy line 1" in trace
    assert "receipt_discrepancy: receipt GR-42-1: line 1 expected 12 got 11" in trace
    assert "invoice_mismatch: invoice INV-42-1 held" in trace
