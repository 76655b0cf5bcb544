"""W3C `traceparent`: what the gateway accepts, how it continues a trace, where it finds one."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import pytest
import workflow_documents
from gatewaykit import Partner, load, write_config
from workflow_documents import T0
from workflow_kit import ManualClock, gateway_config, workflow

from actors.erp_ingress import ErpIngress, QueueBindings
from actors.partner import PartnerIntake, PartnerPolicy, Submission
from actors.routing import Router
from canonical import (
    decode_envelope,
    encode_document,
    encode_envelope,
    new_envelope,
    sample_body,
    sample_document,
)
from canonical.tracecontext import child_traceparent, parse_traceparent, traceparent_of
from gateway.config.workflow import WorkflowSettings
from gateway.resubmit import resubmitters
from gateway.store import Store
from protocols.amqp.consumer import Inbound

NO_BROKER = "amqp://guest:guest@127.0.0.1:9/"

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
VALID = f"00-{TRACE}-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        (VALID, VALID),
        (VALID.encode(), VALID),
        (f"  {VALID}\t", VALID),  # optional whitespace around a header value
        (f"00-{TRACE}-00f067aa0ba902b7-00", f"00-{TRACE}-00f067aa0ba902b7-00"),
        # A later version: its first 55 characters, passed on as version 00.
        (
            f"cc-{TRACE}-00f067aa0ba902b7-09-what-the-future-holds",
            f"00-{TRACE}-00f067aa0ba902b7-09",
        ),
        (f"cc-{TRACE}-00f067aa0ba902b7-09", f"00-{TRACE}-00f067aa0ba902b7-09"),
    ],
)
def test_a_valid_traceparent_is_kept_in_the_version_00_form(sent: str | bytes, kept: str) -> None:
    assert parse_traceparent(sent) == kept


@pytest.mark.parametrize(
    "sent",
    [
        None,
        "",
        "garbage",
        VALID.upper(),  # hex is lowercase only
        f"ff-{TRACE}-00f067aa0ba902b7-01",  # version ff is invalid
        f"00-{'0' * 32}-00f067aa0ba902b7-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero parent id
        f"{VALID}-extra",  # version 00 has exactly four fields
        f"cc-{TRACE}-00f067aa0ba902b7-09x",  # a later version must continue with "-"
        VALID[:-1],
        f"00-{TRACE}-00f067aa0ba902b7-0g",
        "00-" + "a" * 600,
        "00-\u00e9",
        f"00-{TRACE}-00f067aa0ba902b\u20ac-01",  # not even latin-1 (an AMQP str header)
        f"00-{TRACE}-00f067aa0ba902b7-01".encode() + b"\xff",
    ],
)
def test_an_invalid_traceparent_is_ignored(sent: str | None) -> None:
    assert parse_traceparent(sent) is None


def test_the_next_hop_keeps_trace_id_and_flags_under_a_new_parent_id() -> None:
    children = {child_traceparent(VALID) for _ in range(50)}
    assert len(children) == 50
    for child in children:
        assert parse_traceparent(child) == child
        version, trace_id, parent_id, flags = child.split("-")
        assert (version, trace_id, flags) == ("00", TRACE, "01")
        assert parent_id != "00f067aa0ba902b7"


@pytest.mark.parametrize("traceparent", [VALID, None])
def test_the_envelope_carries_the_traceparent_and_it_is_found_in_the_bytes(
    traceparent: str | None,
) -> None:
    envelope = new_envelope(
        sample_document("purchase_order", 1),
        partner_id="acme",
        idempotency_key="k-1",
        traceparent=traceparent,
    )
    body = encode_envelope(envelope)
    assert traceparent_of(body) == traceparent
    assert decode_envelope(body).traceparent == traceparent


def test_an_envelope_written_before_the_field_existed_has_no_traceparent() -> None:
    envelope = new_envelope(
        sample_document("purchase_order", 1), partner_id="acme", idempotency_key="k-1"
    )
    old = encode_envelope(envelope).replace(b',"traceparent":null', b"")
    assert b"traceparent" not in old
    assert traceparent_of(old) is None
    assert decode_envelope(old).traceparent is None


def test_a_traceparent_is_found_whatever_the_field_order() -> None:
    # Another encoder (or a hand-written message) may put the field anywhere.
    body = b'{"traceparent":"' + VALID.encode() + b'","message_id":"m-1","document":{}}'
    assert traceparent_of(body) == VALID
    assert traceparent_of(b'{"message_id":"m-1","traceparent":"bad"}') is None
    assert traceparent_of(b"not json at all, traceparent") is None


@pytest.mark.anyio
async def test_an_erp_dead_letter_replayed_continues_the_erps_trace(tmp_path: Path) -> None:
    bound = '{ "purchase_order.released" = "purchase_order", "po.unbound" = "purchase_order" }'
    erp_toml = f'[[erp.consumers]]\nqueue = "q"\nexchange = "erp.events"\nbindings = {bound}\n'
    config = load(write_config(tmp_path, NO_BROKER, [Partner("acme")], extra=erp_toml))
    message = Inbound(
        queue="q",
        exchange="erp.events",
        routing_key="po.unbound",
        body=sample_body("purchase_order", 4),
        message_id="erp-4",
        correlation_id=None,
        message_type=None,
        redelivered=False,
        received_at=time.time(),
        traceparent=VALID,
    )
    async with Store(tmp_path / "gateway.db") as store:
        # A binding the ERP ingress lacked at the time: the message became a dead letter.
        unbound = QueueBindings({"purchase_order.released": "purchase_order"})
        await ErpIngress(store, Router([]), source="erp", queues={"q": unbound}).handle(message)
        (letter,) = await store.dead_letters()
        await resubmitters(config, store)["amqp"](letter)
        (row,) = await store.pending(10)

    assert traceparent_of(row.body) == VALID


@pytest.mark.anyio
async def test_an_event_the_workflow_emits_continues_the_trace_of_its_cause(
    tmp_path: Path,
) -> None:
    order = workflow_documents.order(1)
    too_many = workflow_documents.ack(order, quantities={1: Decimal(20)})  # beyond tolerance
    settings = WorkflowSettings(feed_poll_s=0.05)
    async with workflow(tmp_path / "gw.db", gateway_config(settings), ManualClock(T0)) as running:
        await running.commit(order, "erp")
        intake = PartnerIntake(PartnerPolicy(partner_id="acme", rate_per_second=1e9, burst=10**9))
        traced = Submission(
            partner_id="acme",
            document_type="purchase_order_ack",
            body=encode_document(too_many),
            idempotency_key="ack-1",
            received_at=time.time(),
            traceparent=VALID,
        )
        await running.store.accept(intake.admit(traced))
        running.workflow.feeder.wake()
        await running.until(lambda: bool(running.events("exception")))
        (exception,) = running.events("exception")

    assert exception.traceparent == VALID
