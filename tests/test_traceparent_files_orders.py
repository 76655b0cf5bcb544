"""A file starts a trace, and a customer's order continues its own: the ERP's queue shows both.

Real RabbitMQ; the messages are read by the test's own aio-pika client, so the `traceparent`
checked is the header on the wire.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from customer_api_support import api_client, order_body, write_api_config
from files_support import HEADER, row
from gatewaykit import Partner, bound_queue, drain, load, running, write_config
from test_files_gateway import channel_config, until

from canonical import decode_envelope
from canonical.tracecontext import parse_traceparent

pytestmark = [pytest.mark.anyio, pytest.mark.rabbitmq]

TRACE = "0af7651916cd43dd8448eb211c80319c"
SENT = f"00-{TRACE}-b7ad6b7169203331-01"


def header(message: object) -> str | None:
    headers = getattr(message, "headers", None) or {}
    value = headers.get("traceparent")
    assert value is None or isinstance(value, str)
    return value


async def test_every_message_of_a_file_carries_the_files_own_new_trace(
    tmp_path: Path, amqp_url: str
) -> None:
    folder = tmp_path / "acme"
    items = tmp_path / "items.csv"
    config = load(
        write_config(
            tmp_path, amqp_url, [Partner("acme")], partner_extra=channel_config(folder, items)
        )
    )
    async with bound_queue(amqp_url, "test.traceparent.files") as queue, running(config):
        incoming = folder / "incoming"
        (incoming / "stock_1.csv").write_text(HEADER + row("S-1", "2") + row("S-2", "5", "EA"))
        (incoming / "stock_2.csv").write_text(HEADER + row("S-1", "3"))
        await until(lambda: len(os.listdir(folder / "archive")) == 2, "both archived")
        messages = await drain(queue, expect=3)

    by_file: dict[str, set[str | None]] = {}
    for message in messages:
        envelope = decode_envelope(message.body)
        assert envelope.provenance is not None
        assert header(message) == envelope.traceparent
        by_file.setdefault(envelope.provenance.file, set()).add(header(message))
    assert set(by_file) == {"stock_1.csv", "stock_2.csv"}
    (first,) = by_file["stock_1.csv"]  # one trace for the whole file
    (second,) = by_file["stock_2.csv"]
    assert first is not None
    assert second is not None
    assert parse_traceparent(first) == first
    assert first.endswith("-01")  # sampled
    assert first.split("-")[1] != second.split("-")[1]  # a trace per file


@pytest.mark.parametrize(
    ("sent", "published"),
    [(SENT, SENT), ("not-a-traceparent", None), (None, None)],
)
async def test_a_customer_orders_traceparent_is_a_header_on_its_message_to_the_erp(
    tmp_path: Path, amqp_url: str, sent: str | None, published: str | None
) -> None:
    config = load(write_api_config(tmp_path, amqp_url))
    headers = {"idempotency-key": "order-traced"}
    if sent is not None:
        headers["traceparent"] = sent
    async with (
        bound_queue(amqp_url, "test.traceparent.orders", "sales_order.#") as queue,
        running(config) as gateway,
        api_client(gateway) as http,
    ):
        answer = await http.post("/orders", json=order_body(1), headers=headers)
        assert answer.status_code == 202, answer.text
        (message,) = await drain(queue, expect=1)

    assert header(message) == published
    assert decode_envelope(message.body).traceparent == published
