"""Spans of one message reach an OTLP collector in the trace the message came with.

A real gateway (real RabbitMQ, its store's writer process) exports to a real OTLP/HTTP receiver
on loopback (`otlp_collector.py`), which decodes the protobuf a collector would. The spans are
read once the gateway has stopped: closing its tracers exports what is left, in both processes.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from configkit import workflow
from customer_api_support import api_client, order_body, write_api_config
from delivery_receiver import OK, Receiver, answering, order_desk
from gatewaykit import (
    Partner,
    bound_queue,
    client,
    drain,
    erp_supplier,
    load,
    running,
    write_config,
)
from otlp_collector import ReceivedSpan, collecting
from test_erp_ingress_gateway import Erp, until
from test_traceparent_gateway import publish_traced
from test_workflow_gateway import until_status

from canonical import decode_envelope, sample_body

pytestmark = [pytest.mark.anyio, pytest.mark.rabbitmq]

ACME = Partner("acme")
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARTNER_SPAN = "00f067aa0ba902b7"
SENT = f"00-{TRACE}-{PARTNER_SPAN}-01"


def telemetry(endpoint: str) -> str:
    return f'[telemetry]\notlp_endpoint = "{endpoint}"\nservice_name = "gateway-under-test"\n'


def one(spans: list[ReceivedSpan]) -> ReceivedSpan:
    assert len(spans) == 1, spans
    return spans[0]


async def test_a_webhooks_ingress_commit_and_publish_are_spans_of_the_trace_it_sent(
    tmp_path: Path, amqp_url: str
) -> None:
    body = sample_body("purchase_order", 41)
    headers = {**ACME.headers(body), "traceparent": SENT}
    async with collecting() as (collector, endpoint):
        config = load(write_config(tmp_path, amqp_url, [ACME], extra=telemetry(endpoint)))
        async with bound_queue(amqp_url, "test.telemetry.in", "purchase_order.acme") as queue:
            async with running(config) as gateway, client(gateway) as http:
                response = await http.post(
                    "/webhooks/acme/purchase_order", content=body, headers=headers
                )
                assert response.status_code == 202
                (message,) = await drain(queue, expect=1)

    ingress = one(collector.named("webhook ingress"))
    commit = one(collector.named("outbox commit"))
    publish = one(collector.named("relay publish"))
    assert {ingress.trace_id, commit.trace_id, publish.trace_id} == {TRACE}
    # The partner's span is the ingress span's parent; the ingress span, the parent of the
    # hops after it, in this process and in the store's writer process.
    assert ingress.parent_span_id == PARTNER_SPAN
    assert commit.parent_span_id == publish.parent_span_id == ingress.span_id
    assert (ingress.process, commit.process, publish.process) == (
        "gateway",
        "store-writer",
        "store-writer",
    )
    assert {ingress.service, commit.service, publish.service} == {"gateway-under-test"}
    assert ingress.attributes["http.response.status_code"] == 202
    assert ingress.attributes["gateway.partner"] == "acme"
    assert publish.attributes["gateway.outcome"] == "confirmed"
    assert publish.attributes["messaging.message.id"] == response.json()["message_ids"][0]
    assert [s.failed for s in (ingress, commit, publish)] == [False, False, False]
    # What the ERP reads continues from the ingress span, in the same trace.
    assert ingress.names((message.headers or {}).get("traceparent"))
    assert ingress.names(decode_envelope(message.body).traceparent)


async def test_a_webhook_without_a_traceparent_starts_a_trace_at_the_ingress(
    tmp_path: Path, amqp_url: str
) -> None:
    body = sample_body("purchase_order", 42)
    async with collecting() as (collector, endpoint):
        config = load(write_config(tmp_path, amqp_url, [ACME], extra=telemetry(endpoint)))
        async with bound_queue(amqp_url, "test.telemetry.new", "purchase_order.acme") as queue:
            async with running(config) as gateway, client(gateway) as http:
                response = await http.post(
                    "/webhooks/acme/purchase_order", content=body, headers=ACME.headers(body)
                )
                assert response.status_code == 202
                (message,) = await drain(queue, expect=1)

    ingress = one(collector.named("webhook ingress"))
    assert ingress.parent_span_id == ""
    assert one(collector.named("relay publish")).trace_id == ingress.trace_id
    assert ingress.names((message.headers or {}).get("traceparent"))


async def test_an_erp_messages_delivery_attempt_and_workflow_step_are_spans_of_its_trace(
    tmp_path: Path, amqp_url: str
) -> None:
    erp = Erp()
    receiver = Receiver(answering(then=OK))
    body = sample_body("purchase_order", 43, supplier="acme")
    async with collecting() as (collector, endpoint), order_desk(receiver) as channel:
        extra = workflow() + telemetry(endpoint)
        path = erp_supplier(tmp_path, amqp_url, erp, channel, extra=extra)
        async with running(load(path)) as gateway:
            await until(lambda: all(c.statistics().consuming for c in gateway.erp_consumers))
            await publish_traced(erp, amqp_url, body, SENT)
            await until(lambda: bool(receiver.delivered()), timeout=20)
            # The release and the delivery to the supplier are the thread's first two inputs.
            await until_status(gateway, json.loads(body)["po_number"], "sent")

    attempt = one(collector.named("delivery attempt"))
    assert (attempt.trace_id, attempt.parent_span_id) == (TRACE, PARTNER_SPAN)
    assert attempt.attributes["gateway.outcome"] == "delivered"
    assert not attempt.failed
    # The supplier's webhook names the attempt's span as its parent.
    assert attempt.names(receiver.calls[0].traceparent)
    # The thread's steps for the release and for its delivery continue the ERP's trace (a
    # timer's step, none here, would start its own).
    steps = {
        s.attributes["gateway.input"]: s
        for s in collector.named("workflow step")
        if s.trace_id == TRACE
    }
    assert set(steps) >= {"DocumentArrived", "DeliveryOutcome"}, collector.named("workflow step")
    assert steps["DocumentArrived"].parent_span_id == PARTNER_SPAN
    assert {"outbox commit"} <= {s.name for s in collector.spans if s.trace_id == TRACE}


async def test_without_telemetry_no_tracer_no_exporter_thread_and_the_header_as_sent(
    tmp_path: Path, amqp_url: str
) -> None:
    body = sample_body("purchase_order", 44)
    headers = {**ACME.headers(body), "traceparent": SENT}
    async with collecting() as (collector, _):
        config = load(write_config(tmp_path, amqp_url, [ACME]))
        async with bound_queue(amqp_url, "test.telemetry.off", "purchase_order.acme") as queue:
            async with running(config) as gateway, client(gateway) as http:
                response = await http.post(
                    "/webhooks/acme/purchase_order", content=body, headers=headers
                )
                assert response.status_code == 202
                (message,) = await drain(queue, expect=1)
                assert gateway.tracer is None
                threads = [t.name for t in threading.enumerate()]

    assert not [name for name in threads if name.startswith("OtelBatch")]
    assert collector.spans == []
    assert (message.headers or {}).get("traceparent") == SENT  # carried as is


async def test_a_customer_order_is_an_order_ingress_span_its_erp_message_continues(
    tmp_path: Path, amqp_url: str
) -> None:
    async with collecting() as (collector, endpoint):
        config = load(write_api_config(tmp_path, amqp_url, extra=telemetry(endpoint)))
        headers = {"idempotency-key": "order-spanned", "traceparent": SENT}
        async with (
            bound_queue(amqp_url, "test.telemetry.orders", "sales_order.#") as queue,
            running(config) as gateway,
            api_client(gateway) as http,
        ):
            answer = await http.post("/orders", json=order_body(1), headers=headers)
            assert answer.status_code == 202, answer.text
            (message,) = await drain(queue, expect=1)
            await until(lambda: bool(collector.named("relay publish")), timeout=20)

    ingress = one(collector.named("order ingress"))
    assert (ingress.trace_id, ingress.parent_span_id) == (TRACE, PARTNER_SPAN)
    assert ingress.attributes["gateway.customer"] == "acme-retail"
    assert ingress.attributes["http.response.status_code"] == 202
    # The ERP's message names the span; the commit and the publish are in the same trace.
    assert ingress.names((message.headers or {}).get("traceparent"))
    assert one(collector.named("outbox commit")).trace_id == TRACE
    assert one(collector.named("relay publish")).trace_id == TRACE
