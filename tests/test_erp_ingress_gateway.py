"""ERP messages end to end: a plain aio-pika client publishes, the running gateway keeps them.

The ERP is played by aio-pika, not by the gateway's code; what the tests read is the store's
file (inbox, outbox, deliveries, dead letters) and the events exchange.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path

import aio_pika
import anyio
import orjson
import pytest
from configkit import PO_RELEASED, erp_section
from gatewaykit import Partner, bound_queue, drain, load, running, write_config

from canonical import decode_envelope, sample_body
from gateway.app import Gateway
from gateway.config import Secret

pytestmark = [pytest.mark.anyio, pytest.mark.rabbitmq]


class Erp:
    """The ERP's side of one test: its own exchange and the gateway queue bound to it."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:8]
        self.exchange = f"test.erp.{tag}"
        self.queue = f"test.gateway-erp.{tag}"

    def config(self) -> str:
        """acme and globex subscribed; item updates too; the consumer tuned."""
        return erp_section(
            self,
            ("acme", "globex"),
            bindings=PO_RELEASED | {"item.updated": "item_master"},
            tuning="prefetch = 8\nconcurrency = 4\n",
        )

    async def publish(
        self, url: str, body: bytes, message_id: str, key: str = "purchase_order.released"
    ) -> None:
        async with await aio_pika.connect(url) as connection:
            channel = await connection.channel()
            exchange = await channel.get_exchange(self.exchange)
            await exchange.publish(
                aio_pika.Message(
                    body,
                    message_id=message_id,
                    correlation_id=f"corr-{message_id}",
                    content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key=key,
            )


def rows(gateway: Gateway, query: str, *args: object) -> list[tuple[object, ...]]:
    """Read the gateway's store file as an operator would, beside the running gateway."""
    with sqlite3.connect(gateway.config.store.path) as db:
        return db.execute(query, args).fetchall()


async def until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.02)


def acked(gateway: Gateway) -> int:
    return sum(c.statistics().acked for c in gateway.erp_consumers)


@pytest.fixture
def erp() -> Erp:
    return Erp()


@pytest.fixture
def config_path(tmp_path: Path, amqp_url: str, erp: Erp) -> Path:
    return write_config(
        tmp_path,
        amqp_url,
        [Partner("acme"), Partner("globex")],
        extra=erp.config(),
        # A subscriber needs a channel; pull keeps its deliveries pending, as these tests read.
        partner_extra='receives = ["purchase_order"]\n'
        f'[partners.pull]\ntoken = "{Secret.generate().reveal()}"',
    )


async def test_purchase_order_from_the_erp_is_kept_with_a_delivery_to_its_supplier(
    amqp_url: str, erp: Erp, config_path: Path
) -> None:
    async with (
        running(load(config_path)) as gateway,
        bound_queue(amqp_url, f"test.erp-events.{uuid.uuid4().hex[:8]}", "*.erp") as events,
    ):
        await until(lambda: all(c.statistics().consuming for c in gateway.erp_consumers))
        await erp.publish(amqp_url, sample_body("purchase_order", 5, supplier="acme"), "po-5")
        await until(lambda: acked(gateway) == 1)
        published = await drain(events, expect=1)

        inbox = rows(gateway, "SELECT partner_id, idempotency_key FROM inbox")
        # The order's own row; the purchase-order thread may add its events after it.
        outbox = rows(
            gateway,
            "SELECT message_id, routing_key, causation_id FROM outbox"
            " WHERE document_type = 'purchase_order'",
        )
        deliveries = rows(
            gateway, "SELECT partner_id, message_id, document_type, aggregate_key FROM deliveries"
        )

    assert inbox == [("erp", "po-5")]
    [(message_id, key, causation)] = outbox
    assert (key, causation) == ("purchase_order.erp", "po-5")
    assert deliveries == [("acme", message_id, "purchase_order", "po:PO-0000005")]
    [event] = published
    envelope = decode_envelope(event.body)
    assert (envelope.message_id, envelope.correlation_id) == (message_id, "corr-po-5")


async def test_purchase_order_published_twice_is_kept_once(
    amqp_url: str, erp: Erp, config_path: Path
) -> None:
    body = sample_body("purchase_order", 6, supplier="globex")
    async with running(load(config_path)) as gateway:
        await until(lambda: all(c.statistics().consuming for c in gateway.erp_consumers))
        await erp.publish(amqp_url, body, "po-6")
        await erp.publish(amqp_url, body, "po-6")
        await until(lambda: acked(gateway) == 2)

        outbox = rows(gateway, "SELECT count(*) FROM outbox WHERE document_type = 'purchase_order'")
        deliveries = rows(gateway, "SELECT partner_id FROM deliveries")

    assert outbox == [(1,)]
    assert deliveries == [("globex",)]
    assert gateway.erp is not None
    assert (gateway.erp.statistics().accepted, gateway.erp.statistics().replayed) == (1, 1)


async def test_malformed_message_is_dead_lettered_and_the_next_one_is_kept(
    amqp_url: str, erp: Erp, config_path: Path
) -> None:
    broken = orjson.loads(sample_body("purchase_order", 7))
    broken["order_date"] = "yesterday"
    del broken["supplier"]
    async with running(load(config_path)) as gateway:
        await until(lambda: all(c.statistics().consuming for c in gateway.erp_consumers))
        await erp.publish(amqp_url, orjson.dumps(broken), "po-7-broken")
        await erp.publish(amqp_url, sample_body("purchase_order", 8, supplier="acme"), "po-8")
        await until(lambda: acked(gateway) == 2)

        dead = rows(
            gateway,
            "SELECT source, message_id, reason FROM dead_letters WHERE source = ?",
            f"amqp:{erp.queue}",
        )
        inbox = rows(gateway, "SELECT idempotency_key FROM inbox")

    [(source, message_id, reason)] = dead
    assert (source, message_id) == (f"amqp:{erp.queue}", "po-7-broken")
    assert isinstance(reason, str)
    assert "$.order_date" in reason
    assert "$.supplier" in reason
    assert inbox == [("po-8",)]


# Bodies fuzzing found leaking other errors than InvalidDocument from the codec (issue 17).
HOSTILE = [
    ("item.updated", b'{"\xa1":""}', "$"),
    ("purchase_order.released", b'{"document_type":1e400}', "$.document_type"),
    ("purchase_order.released", b'{"document_type":' + b"9" * 4400 + b"}", "$.document_type"),
    ("purchase_order.released", b'{"x":' + b"[" * 1000 + b"]" * 1000 + b"}", "$"),
    ("purchase_order.released", b"[" * 100_000, "$"),
]


async def test_hostile_bodies_are_dead_lettered_with_their_reason_not_requeued(
    amqp_url: str, erp: Erp, config_path: Path
) -> None:
    async with running(load(config_path)) as gateway:
        await until(lambda: all(c.statistics().consuming for c in gateway.erp_consumers))
        for n, (key, body, _) in enumerate(HOSTILE):
            await erp.publish(amqp_url, body, f"hostile-{n}", key=key)
        await erp.publish(amqp_url, sample_body("purchase_order", 9, supplier="acme"), "po-9")
        await until(lambda: acked(gateway) == len(HOSTILE) + 1)

        dead = rows(
            gateway,
            "SELECT message_id, reason FROM dead_letters WHERE source = ? ORDER BY message_id",
            f"amqp:{erp.queue}",
        )
        inbox = rows(gateway, "SELECT idempotency_key FROM inbox")
        requeued = sum(c.statistics().requeued for c in gateway.erp_consumers)

    assert [message_id for message_id, _ in dead] == [f"hostile-{n}" for n in range(len(HOSTILE))]
    for (_, reason), (_, _, path) in zip(dead, HOSTILE, strict=True):
        assert isinstance(reason, str)
        assert reason.startswith(f"invalid-document: {path}")
    assert inbox == [("po-9",)]
    assert requeued == 0
