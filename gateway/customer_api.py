"""The customer API's wiring: accounts from `[[customers]]`, the order desk over the store,
the order status feed, and the listener that serves `/api/v1` (protocols/http/api/).

An order is one acceptance through the store's intake path (inbox idempotency record and a
`sales_order` outbox row in one commit, answered 202 after it), so the relay publishes it to
the events exchange as `sales_order.{customer}` when the broker takes it; the gateway never
calls the ERP. The order's status row (`store.orders`) is written right after the commit,
and again (a no-op) on every replay: a crash between the two is healed by the customer's
retry, which the 202 without a body would have prompted anyway.

The status feed reads committed `order_status` documents (from the ERP's queues or a
logistics partner's webhooks) off the outbox behind a saved cursor, and moves the rows on.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable

import anyio
import msgspec
from anyio.abc import TaskStatus

from actors.partner import body_hash
from actors.ports import Acceptance, NewOutboxRow
from actors.ratelimit import TokenBucket
from canonical import decode_envelope, encode_envelope, new_envelope, routing_key
from canonical.common import Quantity
from canonical.sales import OrderStatus, SalesOrder, SalesOrderLine, sales_order_id
from canonical.tracing import Tracer
from gateway.config import GatewayConfig
from gateway.config.customers import CustomerApiSettings, CustomerConfig
from gateway.store import Store
from gateway.store.orders import TERMINAL_STATES, Milestone, OrderRow
from protocols.http.api import (
    Account,
    Accounts,
    ApiLimits,
    AvailabilitySource,
    MilestoneAnswer,
    OrderAccepted,
    OrderRequest,
    OrderStatusAnswer,
    Submitted,
    customer_api,
    key_digest,
)
from protocols.http.asgi import ASGIApp
from protocols.http.server import serve

__all__ = [
    "AccountBuckets",
    "OrderStatusFeed",
    "StoreOrderDesk",
    "accounts_of",
    "build_customer_api",
    "serve_customer_api",
]

logger = logging.getLogger(__name__)

ACCEPTED = 202
# The feed's cursor among the workflow feeders' (the same table, its own name).
STATUS_CURSOR = "customer-orders"
STATUS_DOCUMENT = "order_status"
_status = msgspec.json.Encoder()


class AccountBuckets:
    """Each customer account's token bucket: what `Accounts` asks before serving a call.

    `update` takes a reloaded configuration's accounts: one whose limit did not change keeps
    its bucket (what it has used up), as a partner keeps its own.
    """

    def __init__(self) -> None:
        self._buckets: dict[str, TokenBucket] = {}

    def update(self, customers: Iterable[CustomerConfig]) -> None:
        buckets: dict[str, TokenBucket] = {}
        for c in customers:
            limit = (c.rate_limit.per_second, float(c.rate_limit.burst))
            bucket = self._buckets.get(c.id)
            if bucket is None or (bucket.rate, bucket.burst) != limit:
                bucket = TokenBucket(c.rate_limit.per_second, c.rate_limit.burst)
            buckets[c.id] = bucket
        self._buckets = buckets

    def __call__(self, account_id: str) -> float:
        return self._buckets[account_id].take()


def accounts_of(config: GatewayConfig, buckets: AccountBuckets | None = None) -> Accounts:
    """The API's accounts from `[[customers]]`: key digests only, a token bucket each
    (`buckets`, the running ones on a reload)."""
    buckets = buckets or AccountBuckets()
    buckets.update(config.customers)
    accounts = [
        Account(
            id=c.id,
            key_digests=tuple(key_digest(k.reveal()) for k in c.api_keys),
            locations=frozenset(c.locations),
            ship_tos=frozenset(c.ship_tos),
        )
        for c in config.customers
    ]
    return Accounts(accounts, buckets)


class StoreOrderDesk:
    """The API's order desk: commit through the store's intake path, read the status rows."""

    def __init__(
        self, store: Store, *, stale_after_s: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.stale_after_s = stale_after_s
        self.clock = clock

    async def submit(
        self,
        account_id: str,
        idempotency_key: str,
        body: bytes,
        order: OrderRequest,
        *,
        traceparent: str | None = None,
    ) -> Submitted:
        now = self.clock()
        at = dt.datetime.fromtimestamp(now, dt.UTC)
        order_id = sales_order_id(account_id, idempotency_key)
        document = SalesOrder(
            order_id=order_id,
            customer_id=account_id,
            customer_po_number=order.customer_po_number,
            ship_to=order.ship_to,
            lines=tuple(
                SalesOrderLine(
                    line_number=i,
                    sku=line.sku,
                    quantity=Quantity(value=line.quantity, uom=line.uom),
                )
                for i, line in enumerate(order.lines, start=1)
            ),
            requested_date=order.requested_date,
            note=order.note,
            submitted_at=at,
        )
        envelope = new_envelope(
            document,
            partner_id=account_id,
            idempotency_key=idempotency_key,
            received_at=at,
            traceparent=traceparent,
        )
        answer = OrderAccepted(
            order_id=order_id,
            status="buffered",
            status_url=f"/api/v1/orders/{order_id}",
            message_id=envelope.message_id,
            accepted_at=at,
        )
        accepted = await self.store.accept(
            Acceptance(
                partner_id=account_id,
                idempotency_key=idempotency_key,
                body_hash=body_hash("sales_order", body),
                response_status=ACCEPTED,
                response_body=_status.encode(answer),
                records=(
                    NewOutboxRow(
                        message_id=envelope.message_id,
                        document_type=envelope.document_type,
                        schema_version=envelope.schema_version,
                        routing_key=routing_key(envelope.document_type, account_id),
                        correlation_id=envelope.correlation_id,
                        causation_id=envelope.causation_id,
                        body=encode_envelope(envelope),
                    ),
                ),
            )
        )
        # The status row, after the commit; a replay writes it again if a crash lost it. A
        # replay's message id is the first answer's.
        first = msgspec.json.decode(accepted.body, type=OrderAccepted)
        await self.store.orders.record(
            order_id=order_id,
            customer_id=account_id,
            idempotency_key=idempotency_key,
            message_id=first.message_id,
            submitted_at=first.accepted_at.timestamp(),
        )
        return Submitted(
            status=accepted.status,
            body=accepted.body,
            replayed=accepted.replayed,
            order_id=order_id,
        )

    async def status(self, account_id: str, order_id: str) -> OrderStatusAnswer | None:
        row = await self.store.orders.order(order_id, account_id)
        return (
            None
            if row is None
            else answer_of(row, now=self.clock(), stale_after_s=self.stale_after_s)
        )


def answer_of(row: OrderRow, *, now: float, stale_after_s: float) -> OrderStatusAnswer:
    """The status resource of `row`: stale when no source said anything for too long."""
    return OrderStatusAnswer(
        order_id=row.order_id,
        status=row.status,
        as_of=dt.datetime.fromtimestamp(row.changed_at, dt.UTC),
        # A delivered or cancelled order has nothing more to hear.
        stale=row.status not in TERMINAL_STATES and now - row.heard_at > stale_after_s,
        milestones=tuple(
            MilestoneAnswer(
                status=m.status,
                at=dt.datetime.fromtimestamp(m.at, dt.UTC),
                milestone=m.milestone,
                carrier_scac=m.carrier_scac,
                tracking_number=m.tracking_number,
            )
            for m in row.milestones
        ),
    )


class OrderStatusFeed:
    """Move the orders' status rows on from committed `order_status` documents.

    Reads behind a saved cursor, so each document is applied once in commit order; applying
    one twice changes nothing (`apply_status` keeps milestones once), so a crash between the
    apply and the cursor's save is harmless.
    """

    def __init__(self, store: Store, config: GatewayConfig, settings: CustomerApiSettings) -> None:
        self.store = store
        self.erp_source = config.erp.source
        self.settings = settings
        self.applied = 0
        self._wake = anyio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        ledger = self.store.workflow
        cursor = await ledger.cursor(STATUS_CURSOR)
        if cursor is None:
            # A first start reads from the beginning: status reports for orders before the
            # API existed name no order and are passed over.
            cursor = 0
        task_status.started()
        while True:
            found, reached = await ledger.committed_inputs(
                cursor,
                self.settings.status_batch,
                scan=self.settings.status_batch * 20,
                erp_source=self.erp_source,
                order_types=(STATUS_DOCUMENT,),
                partner_types=(STATUS_DOCUMENT,),
            )
            for row in found:
                await self._apply(row.body)
            if reached != cursor:
                cursor = reached
                await ledger.save_cursor(STATUS_CURSOR, cursor)
            if len(found) < self.settings.status_batch:
                with anyio.move_on_after(self.settings.status_poll_interval_s):
                    await self._wake.wait()
                self._wake = anyio.Event()

    async def _apply(self, body: bytes) -> None:
        document = decode_envelope(body).document
        if not isinstance(document, OrderStatus):
            return
        outcome = await self.store.orders.apply(
            document.order_id,
            Milestone(
                status=document.status,
                at=document.changed_at.timestamp(),
                milestone=document.milestone,
                carrier_scac=document.carrier_scac,
                tracking_number=document.tracking_number,
            ),
        )
        if outcome == "applied":
            self.applied += 1
        elif outcome == "unknown":
            logger.warning(
                "order status for an order the gateway does not know: %s", document.order_id
            )


def build_customer_api(
    config: GatewayConfig,
    store: Store,
    *,
    accounts: Accounts,
    availability: AvailabilitySource,
    clock: Callable[[], float] = time.time,
    tracer: Tracer | None = None,
) -> ASGIApp:
    """The customer API app for `accounts` (`accounts_of(config)`: kept by the caller, which
    swaps them on reload), over `store` and `availability`; `tracer` records orders' spans."""
    settings = config.customer_api or CustomerApiSettings()
    limits = ApiLimits(
        max_skus=settings.max_skus,
        max_body_bytes=settings.max_body_bytes,
        max_lines=settings.max_lines,
        max_quantity=settings.max_quantity,
        items=frozenset(settings.items),
    )
    desk = StoreOrderDesk(store, stale_after_s=settings.status_stale_after_s, clock=clock)
    return customer_api(accounts, availability, desk, limits, tracer=tracer)


async def serve_customer_api(
    app: ASGIApp, settings: CustomerApiSettings, *, task_status: TaskStatus[int]
) -> None:
    """Serve the customer API on its own listener, the way the admin listener is served."""
    await serve(app, host=settings.host, port=settings.port, task_status=task_status)
