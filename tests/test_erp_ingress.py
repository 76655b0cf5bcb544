"""The ERP ingress without a broker: deliveries become acceptances, dead letters or requeues."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from actors.erp_ingress import ErpIngress, QueueBindings, derived_key
from actors.routing import Router, Subscription, aggregate_key
from canonical import decode_envelope, sample_body, sample_document
from canonical.errors import StoreUnavailable
from canonical.outbox import Acceptance, Accepted
from gateway.store import Store
from protocols.amqp.consumer import Inbound

pytestmark = pytest.mark.anyio

QUEUE = "gateway.erp"
BINDINGS = {
    "purchase_order.released": "purchase_order",
    "item.updated": "item_master",
    "inventory.#": "inventory_position",
}
SUPPLIER_ORDERS = [
    Subscription.of(partner, "purchase_order", {"supplier.party_id": partner})
    for partner in ("acme", "globex")
]


def delivery(
    body: bytes,
    *,
    routing_key: str = "purchase_order.released",
    message_id: str | None = "erp-1",
    correlation_id: str | None = None,
    message_type: str | None = None,
) -> Inbound:
    return Inbound(
        queue=QUEUE,
        exchange="erp.events",
        routing_key=routing_key,
        body=body,
        message_id=message_id,
        correlation_id=correlation_id,
        message_type=message_type,
        redelivered=False,
        received_at=time.time(),
    )


def ingress(store: object, subscriptions: list[Subscription] = SUPPLIER_ORDERS) -> ErpIngress:
    return ErpIngress(
        store,  # type: ignore[arg-type]
        Router(subscriptions),
        source="erp",
        queues={QUEUE: QueueBindings(BINDINGS)},
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with Store(tmp_path / "gateway.db") as store:
        yield store


class UnavailableStore:
    """A store whose every commit fails, as on a full disk."""

    async def accept(self, acceptance: Acceptance) -> Accepted:
        raise StoreUnavailable("disk full")

    async def dead_letter(self, **kw: object) -> int:
        raise StoreUnavailable("disk full")


def test_purchase_order_is_delivered_to_its_supplier_only() -> None:
    body = sample_body("purchase_order", 7, supplier="globex")

    acceptance = ingress(None).acceptance(delivery(body))

    assert [d.partner_id for d in acceptance.deliveries] == ["globex"]
    [out] = acceptance.deliveries
    assert (out.document_type, out.aggregate_key) == ("purchase_order", "po:PO-0000007")
    assert out.message_id == acceptance.records[0].message_id
    assert decode_envelope(out.body).document == sample_document(
        "purchase_order", 7, supplier="globex"
    )


def test_accepted_erp_message_is_an_event_keyed_by_its_source() -> None:
    body = sample_body("purchase_order", 1)

    acceptance = ingress(None).acceptance(delivery(body, message_id="erp-42", correlation_id="c-9"))

    [row] = acceptance.records
    envelope = decode_envelope(row.body)
    assert row.routing_key == "purchase_order.erp"
    assert (acceptance.partner_id, acceptance.idempotency_key) == ("erp", "erp-42")
    assert (envelope.partner_id, envelope.causation_id, envelope.correlation_id) == (
        "erp",
        "erp-42",
        "c-9",
    )


def test_document_type_comes_from_a_topic_binding() -> None:
    body = sample_body("inventory_position", 3)

    acceptance = ingress(None).acceptance(delivery(body, routing_key="inventory.position.dc1"))

    assert acceptance.records[0].document_type == "inventory_position"


def test_document_type_comes_from_the_amqp_type_when_no_binding_names_it() -> None:
    body = sample_body("purchase_order_change", 2)

    acceptance = ingress(None).acceptance(
        delivery(body, routing_key="po.other", message_type="purchase_order_change")
    )

    assert acceptance.records[0].document_type == "purchase_order_change"


def test_message_without_message_id_is_keyed_by_its_body() -> None:
    body = sample_body("purchase_order", 1)

    first = ingress(None).acceptance(delivery(body, message_id=None))
    second = ingress(None).acceptance(delivery(body, message_id=None))

    assert first.idempotency_key == second.idempotency_key == derived_key("purchase_order", body)


def test_subscription_without_match_takes_every_document_of_its_type() -> None:
    everything = [Subscription.of("wms", "item_master", {})]

    acceptance = ingress(None, everything).acceptance(
        delivery(sample_body("item_master", 4), routing_key="item.updated")
    )

    assert [(d.partner_id, d.aggregate_key) for d in acceptance.deliveries] == [
        ("wms", f"item:{sample_document('item_master', 4).sku}")  # type: ignore[union-attr]
    ]


def test_aggregate_key_of_a_stock_position_is_sku_at_location() -> None:
    position = sample_document("inventory_position", 1)

    assert aggregate_key(position) == f"stock:{position.sku}@{position.location_id}"  # type: ignore[union-attr]


async def test_delivery_is_committed_with_its_partner_delivery(store: Store) -> None:
    body = sample_body("purchase_order", 1, supplier="acme")

    answer = await ingress(store).handle(delivery(body))

    assert answer == "ack"
    [row] = await store.pending(10)
    assert (row.partner_id, row.routing_key, row.idempotency_key) == (
        "erp",
        "purchase_order.erp",
        "erp-1",
    )


async def test_redelivery_is_acked_without_a_second_event(store: Store) -> None:
    body = sample_body("purchase_order", 1)
    erp = ingress(store)

    answers = [await erp.handle(delivery(body)), await erp.handle(delivery(body))]

    assert answers == ["ack", "ack"]
    assert len(await store.pending(10)) == 1
    assert (erp.statistics().accepted, erp.statistics().replayed) == (1, 1)


async def test_invalid_message_becomes_a_dead_letter_naming_every_bad_field(store: Store) -> None:
    order = orjson.loads(sample_body("purchase_order", 1))
    order["currency"] = "dollars"
    order["lines"][1]["sku"] = ""
    body = orjson.dumps(order)

    answer = await ingress(store).handle(delivery(body, message_id="bad-1"))

    assert answer == "ack"
    [dead] = await store.dead_letters(source=f"amqp:{QUEUE}")
    assert dead.reason.startswith("invalid-document: ")
    assert "$.currency" in dead.reason
    assert "$.lines[1].sku" in dead.reason
    assert (dead.message_id, dead.payload) == ("bad-1", body)
    assert await store.pending(10) == []


async def test_message_that_is_not_json_becomes_a_dead_letter(store: Store) -> None:
    answer = await ingress(store).handle(delivery(b"\xff not json"))

    assert answer == "ack"
    [dead] = await store.dead_letters(source=f"amqp:{QUEUE}")
    assert dead.reason.startswith("invalid-document: $")


async def test_message_the_decoding_crashes_on_is_a_dead_letter_with_the_trace(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Redelivering it would only crash again, until the broker parked it without a reason.
    def crash(document_type: str, body: bytes) -> object:
        raise RuntimeError("a bug in a codec")

    monkeypatch.setattr("actors.erp_ingress.decode_document", crash)
    body = sample_body("purchase_order", 1)

    answer = await ingress(store).handle(delivery(body, message_id="crash-1"))

    assert answer == "ack"
    [dead] = await store.dead_letters(source=f"amqp:{QUEUE}")
    assert (dead.message_id, dead.payload) == ("crash-1", body)
    assert dead.reason == "crash: RuntimeError: a bug in a codec"
    assert "Traceback" in dead.detail
    assert "crashed the ingress" in caplog.text


async def test_message_without_any_document_type_becomes_a_dead_letter(store: Store) -> None:
    answer = await ingress(store).handle(
        delivery(sample_body("purchase_order", 1), routing_key="unbound.key")
    )

    assert answer == "ack"
    [dead] = await store.dead_letters(source=f"amqp:{QUEUE}")
    assert "$.document_type" in dead.reason


async def test_message_id_reused_with_another_body_becomes_a_dead_letter(store: Store) -> None:
    erp = ingress(store)
    await erp.handle(delivery(sample_body("purchase_order", 1)))

    answer = await erp.handle(delivery(sample_body("purchase_order", 2)))

    assert answer == "ack"
    [dead] = await store.dead_letters(source=f"amqp:{QUEUE}")
    assert dead.reason.startswith("idempotency-key-reused")
    assert len(await store.pending(10)) == 1


async def test_store_that_cannot_commit_asks_for_a_requeue() -> None:
    answer = await ingress(UnavailableStore()).handle(delivery(sample_body("purchase_order", 1)))

    assert answer == "requeue"


async def test_dead_letter_the_store_cannot_keep_asks_for_a_requeue() -> None:
    answer = await ingress(UnavailableStore()).handle(delivery(b"not json"))

    assert answer == "requeue"


def test_erp_message_without_event_publishing_has_only_its_deliveries() -> None:
    quiet = ErpIngress(
        None,  # type: ignore[arg-type]
        Router(SUPPLIER_ORDERS),
        source="erp",
        queues={QUEUE: QueueBindings(BINDINGS)},
        publish_events=False,
    )

    acceptance = quiet.acceptance(delivery(sample_body("purchase_order", 1)))

    assert acceptance.records == ()
    assert [d.partner_id for d in acceptance.deliveries] == ["acme"]
