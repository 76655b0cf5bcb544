"""A workflow on a real store, without HTTP or a broker: commit documents, read the events."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
from store_samples import select

from actors.partner import PartnerIntake, PartnerPolicy, Submission
from actors.runtime import InMemoryDeadLetters, RuntimeConfig, Supervisor
from canonical import (
    Document,
    Envelope,
    ExceptionNotice,
    decode_envelope,
    document_type_of,
    encode_document,
)
from canonical.delivery import DeliveryAttempt
from canonical.outbox import Acceptance, NewDelivery
from gateway.config import AmqpSettings, GatewayConfig, PartnerConfig, Secret, WorkflowSettings
from gateway.config.secrets import AmqpUrl
from gateway.metrics import GatewayMetrics
from gateway.store import Store
from gateway.workflow import Workflow


def gateway_config(settings: WorkflowSettings) -> GatewayConfig:
    """A whole config the gateway would accept around `settings`: a broker URL and one partner.

    The threads read only `[workflow]` and `[erp]`; the rest is what every config must have.
    """
    secret = Secret("whsec_" + base64.b64encode(b"k" * 32).decode())
    acme = PartnerConfig(
        id="acme",
        name="acme corp",
        secrets=(secret,),
        sends=frozenset({"invoice"}),
        receives=frozenset({"purchase_order"}),
    )
    amqp = AmqpSettings(url=AmqpUrl("amqp://localhost/"))
    return GatewayConfig(amqp=amqp, partners=(acme,), workflow=settings)


class ManualClock:
    """A clock tests move by hand; the timer service is woken after each move."""

    def __init__(self, start: float) -> None:
        self.now = start
        self.on_move: Callable[[], None] = lambda: None

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.on_move()


async def commit_to(
    store: Store, document: Document, partner: str, *, key: str | None = None
) -> str:
    """Commit `document` to `store` as `partner` sent it (the intake's own path); its id."""
    intake = PartnerIntake(PartnerPolicy(partner_id=partner, rate_per_second=1e9, burst=10**9))
    acceptance = intake.admit(
        Submission(
            partner_id=partner,
            document_type=document_type_of(document),
            body=encode_document(document),
            idempotency_key=key or uuid.uuid4().hex,
            received_at=time.time(),
        )
    )
    await store.accept(acceptance)
    return acceptance.records[0].message_id


def clock_from(start: float) -> Callable[[], float]:
    """A clock that reads `start` now and runs at the real pace from there."""
    offset = start - time.time()
    return lambda: time.time() + offset


@dataclass
class Running:
    store: Store
    workflow: Workflow
    db: Path
    metrics: GatewayMetrics

    async def commit(self, document: Document, partner: str, *, key: str | None = None) -> str:
        """Commit `document` as `partner` sent it (the intake's own path); its message id."""
        message_id = await commit_to(self.store, document, partner, key=key)
        self.workflow.feeder.wake()
        return message_id

    def events(self, document_type: str | None = None) -> list[Envelope]:
        """What the threads emitted, in outbox order (decoded envelopes)."""
        rows = select(
            self.db,
            "SELECT o.body FROM outbox AS o JOIN workflow_journal AS j"
            " ON j.message_id = o.message_id AND j.role = 'event' ORDER BY o.seq",
        )
        found = [decode_envelope(bytes(body)) for (body,) in rows]
        return [e for e in found if document_type is None or e.document_type == document_type]

    def exception_kinds(self) -> list[str]:
        return [e.document.kind for e in self.events() if isinstance(e.document, ExceptionNotice)]

    def rows(self, sql: str) -> list[tuple[object, ...]]:
        return select(self.db, sql)

    async def deliver(self, po_number: str, *, to: str = "acme", at: float = 0.0) -> None:
        """Settle the order's delivery to `to` as its courier would: delivered, one attempt."""
        ((message_id, correlation_id, body),) = select(
            self.db,
            "SELECT message_id, correlation_id, body FROM outbox"
            " WHERE document_type = 'purchase_order' AND CAST(body AS TEXT) LIKE ?",
            (f'%"po_number":"{po_number}"%',),
        )
        await self.store.accept(
            Acceptance(
                partner_id="courier-test",
                idempotency_key=f"deliver-{message_id}",
                body_hash=b"x",
                response_status=202,
                response_body=b"{}",
                deliveries=(
                    NewDelivery(
                        partner_id=to,
                        message_id=message_id,
                        document_type="purchase_order",
                        aggregate_key=f"po:{po_number}",
                        correlation_id=correlation_id,
                        body=bytes(body),
                    ),
                ),
            )
        )
        (delivery,) = await self.store.deliveries.deliveries(partner_id=to, message_id=message_id)
        attempt = DeliveryAttempt(attempted_at=at, status=200, latency_s=0.01, response_head=b"")
        await self.store.deliveries.settle(delivery.id, attempt, "delivered")
        self.workflow.feeder.wake()

    async def until(self, check: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait (bounded) until `check()` holds, reading the store between tries."""
        with anyio.fail_after(timeout):
            while not check():
                await anyio.sleep(0.02)


RUNTIME = RuntimeConfig(backoff_initial_s=0.001, backoff_max_s=0.01, shutdown_deadline_s=5.0)


@asynccontextmanager
async def workflow(
    db: Path, config: GatewayConfig, clock: ManualClock, runtime: RuntimeConfig = RUNTIME
) -> AsyncIterator[Running]:
    """A store, a supervisor and the workflow's tasks on them, until the block ends."""
    async with Store(db, clock=clock) as store, anyio.create_task_group() as tg:
        async with Supervisor(runtime, dead_letters=InMemoryDeadLetters()) as supervisor:
            metrics = GatewayMetrics()
            flow = Workflow(config, store, supervisor, metrics, clock=clock)
            clock.on_move = flow.timers.wake
            await tg.start(flow.run)
            try:
                yield Running(store, flow, db, metrics)
            finally:
                tg.cancel_scope.cancel()
