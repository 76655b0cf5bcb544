"""The purchase-order threads of one gateway: the ports over the store, the registry, the feeder,
the timer service, and the business metrics each committed step feeds.

The threads are runtime actors in a `Registry` under the gateway's `Supervisor` (restarts,
poison messages, passivation); the feeder and the timer service are tasks `run` starts. None of
it is on the webhook path: the feeder reads what the group commits already committed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial

import anyio
import msgspec
from anyio.abc import TaskStatus

from actors.runtime import Registry, Supervisor
from actors.workflow.actor import PurchaseOrderThread, StepDone
from actors.workflow.feeder import DOCUMENTS, WorkflowFeeder
from actors.workflow.inputs import (
    INPUT_DOCUMENTS,
    ORDER_DOCUMENTS,
    DeliveryOutcome,
    DocumentArrived,
    ThreadInput,
    ThreadKey,
    TimerFired,
)
from actors.workflow.ports import (
    CommittedDocument,
    DueTimer,
    SettledDelivery,
    StepCommit,
    StepOutcome,
    ThreadRecord,
)
from actors.workflow.retiming import (
    Deadlines,
    decode_deadlines,
    encode_deadlines,
    retimed_state,
    shifts,
)
from actors.workflow.state import STATUS_ORDER
from actors.workflow.timers import TimerService
from actors.workflow.tolerances import Tolerances
from canonical import ExceptionNotice, InvoiceMatch, ReceiptDiscrepancy, document_type_of
from canonical.tracing import Tracer
from gateway.config import GatewayConfig
from gateway.metrics import GatewayMetrics
from gateway.store import Store
from gateway.store.workflow_state import EventRow, JournalEntry, StepRecord, WorkflowLedger

__all__ = ["StoreDueTimers", "StoreInputs", "StoreThreads", "Workflow", "journal_entry"]

log = logging.getLogger(__name__)

# The deadlines row of suppliers without their own (the `[workflow.rules]` defaults).
DEFAULT_DEADLINES = "*"
_PARTNER_DOCUMENTS = tuple(d for d in INPUT_DOCUMENTS if d not in ORDER_DOCUMENTS)


class StoreThreads:
    """`ThreadLedger` over the store: one step is one `apply_step` in a group commit."""

    def __init__(self, ledger: WorkflowLedger) -> None:
        self._ledger = ledger

    async def load(self, key: ThreadKey) -> ThreadRecord | None:
        row = await self._ledger.thread(key.supplier, key.po_number)
        return None if row is None else ThreadRecord(version=row.version, state=row.state)

    async def commit(self, step: StepCommit) -> tuple[StepOutcome, int]:
        result = await self._ledger.apply_step(
            StepRecord(
                supplier=step.key.supplier,
                po_number=step.key.po_number,
                buyer=step.buyer,
                correlation_id=step.correlation_id,
                status=step.status,
                state=step.state,
                expected_version=step.expected_version,
                input=journal_entry(step.input),
                claim=step.claim,
                events=tuple(EventRow(**msgspec.structs.asdict(e)) for e in step.events),
                arm=step.arm,
                cancel=step.cancel,
            )
        )
        return result.outcome, result.version


def journal_entry(item: ThreadInput) -> JournalEntry:
    """How an input reads in the thread's journal (and so in its trace)."""
    match item:
        case DocumentArrived():
            return JournalEntry(
                message_id=item.message_id,
                document_type=document_type_of(item.document),
                channel=item.channel,
                occurred_at=item.accepted_at,
                partner_id=item.partner_id,
            )
        case DeliveryOutcome():
            return JournalEntry(
                message_id=item.message_id,
                document_type=f"{item.document_type}.{item.outcome}",
                channel="delivery",
                occurred_at=item.settled_at,
                partner_id=item.partner_id,
                causation_id=item.delivered_message_id,
            )
        case TimerFired():
            return JournalEntry(
                message_id=item.message_id,
                document_type=item.kind,
                channel="timer",
                occurred_at=item.due_at,
            )


class StoreInputs:
    """`CommittedInputs` over the store: outbox rows and settled deliveries, by cursor."""

    def __init__(self, ledger: WorkflowLedger, *, erp_source: str, scan: int) -> None:
        self._ledger = ledger
        self._erp_source = erp_source
        self._scan = scan

    async def cursor(self, name: str) -> int:
        saved = await self._ledger.cursor(name)
        if saved is not None:
            return saved
        # First start of the threads on this store: from now on, not through its history.
        top = await (
            self._ledger.outbox_top() if name == DOCUMENTS else self._ledger.attempts_top()
        )
        await self._ledger.save_cursor(name, top)
        return top

    async def save_cursor(self, name: str, position: int) -> None:
        await self._ledger.save_cursor(name, position)

    async def documents_after(
        self, position: int, limit: int
    ) -> tuple[list[CommittedDocument], int]:
        rows, reached = await self._ledger.committed_inputs(
            position,
            limit,
            scan=self._scan,
            erp_source=self._erp_source,
            order_types=ORDER_DOCUMENTS,
            partner_types=_PARTNER_DOCUMENTS,
        )
        documents = [
            CommittedDocument(
                position=r.seq, partner_id=r.partner_id, body=r.body, accepted_at=r.created_at
            )
            for r in rows
        ]
        return documents, reached

    async def deliveries_after(
        self, position: int, limit: int
    ) -> tuple[list[SettledDelivery], int]:
        rows, reached = await self._ledger.settled_deliveries(
            position, limit, ORDER_DOCUMENTS, scan=self._scan
        )
        settled = [
            SettledDelivery(
                position=r.attempt_id,
                delivery_id=r.delivery_id,
                partner_id=r.partner_id,
                message_id=r.message_id,
                document_type=r.document_type,
                outcome="delivered" if r.state == "delivered" else "dead",
                settled_at=r.settled_at,
                reason=r.reason,
                body=r.body,
            )
            for r in rows
        ]
        return settled, reached


class StoreDueTimers:
    """`DueTimers` over the store's timer rows."""

    def __init__(self, ledger: WorkflowLedger) -> None:
        self._ledger = ledger

    async def next_due(self) -> float | None:
        return await self._ledger.next_due()

    async def due(self, now: float, limit: int) -> list[DueTimer]:
        return [
            DueTimer(
                key=ThreadKey(t.supplier, t.po_number),
                kind=t.kind,  # type: ignore[arg-type]  # the store keeps what the rules armed
                generation=t.generation,
                due_at=t.due_at,
            )
            for t in await self._ledger.due(now, limit)
        ]


class _Started:
    """The `task_status` a supervised service is started with: sets an event, each run."""

    def __init__(self, event: anyio.Event) -> None:
        self._event = event

    def started(self, value: object = None) -> None:
        self._event.set()


class Workflow:
    """The threads, their feeder and their timer service; `run` them in a task group."""

    def __init__(
        self,
        config: GatewayConfig,
        store: Store,
        supervisor: Supervisor,
        metrics: GatewayMetrics,
        *,
        clock: Callable[[], float] = time.time,
        tracer: Tracer | None = None,
    ) -> None:
        settings = config.workflow
        self._tracer = tracer
        self._config = config
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._supervisor = supervisor
        self._ledger = StoreThreads(store.workflow)
        self._tolerances: dict[str, Tolerances] = {}
        self.registry: Registry[ThreadKey, ThreadInput, StepOutcome] = Registry(
            supervisor, "thread", self._thread, passivate_after=settings.passivate_after_s
        )
        self.feeder = WorkflowFeeder(
            StoreInputs(store.workflow, erp_source=config.erp.source, scan=settings.feed_scan),
            self.registry.ref,
            erp_source=config.erp.source,
            batch=settings.feed_batch,
            poll_s=settings.feed_poll_s,
            coalesce_s=settings.feed_coalesce_s,
            scan=settings.feed_scan,
        )
        self.timers = TimerService(
            StoreDueTimers(store.workflow),
            self.registry.ref,
            clock=clock,
            max_sleep_s=settings.timer_max_sleep_s,
        )

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Re-time timers, then run the feeder and the timer service as supervised services.

        Started once the feeder knows where each source resumes (before any intake); a crash
        of either is restarted by the supervisor like every service's. When this is cancelled
        (with the listeners) both stop, before the supervisor drains the threads.
        """
        await self.retime_timers()
        positioned = anyio.Event()
        services = [
            # A restarted feeder reads its cursors again: where the last one saved them.
            self._supervisor.start_service(
                "workflow-feeder", partial(self.feeder.run, task_status=_Started(positioned))
            ),
            self._supervisor.start_service("workflow-timers", self.timers.run),
        ]
        try:
            await positioned.wait()
            task_status.started()
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                for service in services:
                    await service.stop()

    def reconfigure(self, config: GatewayConfig) -> None:
        """Take a reloaded configuration's rules: each thread reads them at its next step.

        Follow with `retime_timers()`: the timers already armed move by the deadlines' change.
        """
        self._config = config
        self._tolerances = {}

    async def retime_timers(self) -> int:
        """Move armed timers whose supplier's deadlines changed since they were armed; how many.

        Runs at start, before any timer fires, and after a reload (actors/workflow/retiming.py
        says how far each kind moves). While threads run, the move is safe as any step is: it
        bumps the timers' generations and the threads' versions, so a firing or a step read
        before it is stale and read again. Timers armed before this rule existed have no
        record and keep their time.
        """
        ledger = self._store.workflow
        stored = await ledger.deadline_settings()
        suppliers = {*stored, *self._config.workflow.partners, *await ledger.armed_suppliers()}
        suppliers.discard(DEFAULT_DEADLINES)
        fallback = stored.get(DEFAULT_DEADLINES)
        moved_total = 0
        unchanged: dict[str, bytes] = {DEFAULT_DEADLINES: encode_deadlines(self._deadlines(None))}
        for supplier in sorted(suppliers):
            now = self._deadlines(supplier)
            blob = encode_deadlines(now)
            recorded = stored.get(supplier, fallback)
            before = decode_deadlines(recorded) if recorded is not None else None
            moves = shifts(before, now) if before is not None else {}
            if not moves:
                unchanged[supplier] = blob
                continue
            moved = await ledger.retime(supplier, tuple(moves.items()), retimed_state, blob)
            moved_total += moved
            log.warning(
                "workflow: %s's deadlines changed (%s -> %s): %d armed timer(s) re-timed by %s",
                supplier,
                before,
                now,
                moved,
                ", ".join(f"{kind} {seconds / 3600:+g} h" for kind, seconds in moves.items()),
            )
        await ledger.save_deadline_settings(unchanged)
        if moved_total:
            self.timers.wake()  # a timer may be due sooner now
        return moved_total

    def _deadlines(self, supplier: str | None) -> Deadlines:
        rules = self._config.workflow.rules if supplier is None else self.tolerances(supplier)
        return Deadlines(
            ack_sla_hours=rules.ack_sla_hours,
            asn_lead_days=rules.asn_lead_days,
            receipt_overdue_days=rules.receipt_overdue_days,
            park_hours=rules.park_hours,
        )

    async def sample(self) -> None:
        """Set the gauges that need a query: threads by status, overdue timers."""
        counts = await self._store.workflow.status_counts()
        for status in STATUS_ORDER:  # a status no thread is in any more reads 0, not its last
            self._metrics.threads.labels(status).set(counts.get(status, 0))
        self._metrics.overdue_timers.set(await self._store.workflow.overdue_timers(self._clock()))

    def tolerances(self, supplier: str) -> Tolerances:
        found = self._tolerances.get(supplier)
        if found is None:
            rules = self._config.workflow.rules_for(supplier)
            found = msgspec.convert(msgspec.structs.asdict(rules), Tolerances)
            self._tolerances[supplier] = found
        return found

    def _thread(self, key: ThreadKey) -> PurchaseOrderThread:
        return PurchaseOrderThread(
            key,
            self._ledger,
            tolerances=partial(self.tolerances, key.supplier),
            clock=self._clock,
            observe=self._stepped,
            tracer=self._tracer,
        )

    def _stepped(self, done: StepDone) -> None:
        if done.step.arm:
            self.timers.wake()
        observe_step(self._metrics, done)


def observe_step(metrics: GatewayMetrics, done: StepDone) -> None:
    """Count what one committed step did, in the business metrics."""
    partner = done.key.supplier
    before, after = done.before, done.step.state
    if (
        before.acknowledged_at is None
        and after.acknowledged_at is not None
        and after.delivered_at is not None
    ):
        metrics.ack_latency.labels(partner).observe(
            max(0.0, after.acknowledged_at - after.delivered_at)
        )
    if len(after.asns) > len(before.asns):
        timely = "shipment_due" in before.timers
        metrics.asns.labels(partner, "true" if timely else "false").inc()
    if len(after.receipts) > len(before.receipts):
        discrepant = any(isinstance(e.document, ReceiptDiscrepancy) for e in done.step.events)
        metrics.receipts.labels(partner, "true" if discrepant else "false").inc()
    for event in done.step.events:
        document = event.document
        if isinstance(document, ExceptionNotice):
            metrics.workflow_exceptions.labels(partner, document.kind).inc()
        elif isinstance(document, InvoiceMatch):
            metrics.invoice_matches.labels(partner, document.result).inc()
