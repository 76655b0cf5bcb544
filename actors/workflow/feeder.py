"""The workflow feeder: hands the threads what the gateway committed, in commit order.

Off the webhook path: it reads committed outbox rows (the ERP's orders, partners' acks, ASNs,
receipts, invoices) and settled deliveries of orders to suppliers from cursors it saves in the
store, and asks each input's thread actor to apply it. Inputs of one thread go one after the
other in commit order; threads apply theirs concurrently. A cursor moves past a batch only
once every input of it was applied (or set aside by the runtime as poison), so a crash replays
at most a batch, and replays change nothing (each thread's consumed marks).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import anyio
from anyio.abc import TaskStatus

from actors.keyed_feed import feed_in_order
from actors.runtime import ActorRef
from actors.workflow.inputs import (
    INPUT_DOCUMENTS,
    DeliveryOutcome,
    DocumentArrived,
    ThreadInput,
    ThreadKey,
    thread_keys,
)
from actors.workflow.ports import (
    CommittedDocument,
    CommittedInputs,
    SettledDelivery,
    StepOutcome,
)
from canonical import decode_envelope
from canonical.errors import InvalidDocument, StoreUnavailable

__all__ = ["DELIVERIES", "DOCUMENTS", "WorkflowFeeder"]

log = logging.getLogger(__name__)

# The cursors' names in the store.
DOCUMENTS = "documents"
DELIVERIES = "deliveries"
# After a thread could not take an input (store or actor unavailable): wait, then retry.
RETRY_AFTER_S = 1.0

Threads = Callable[[ThreadKey], ActorRef[ThreadInput, StepOutcome]]


class WorkflowFeeder:
    """Feeds committed documents and delivery outcomes to the threads; run it in a task group."""

    def __init__(
        self,
        source: CommittedInputs,
        threads: Threads,
        *,
        erp_source: str,
        batch: int,
        poll_s: float,
        coalesce_s: float = 0.0,
        scan: int = 20_000,
    ) -> None:
        self._source = source
        self._threads = threads
        self._erp_source = erp_source
        self._batch = batch
        self._poll_s = poll_s
        self._coalesce_s = coalesce_s
        self._scan = scan
        self._woken = anyio.Event()
        self._saved: dict[str, int] = {}
        # How far each source has been applied (the saved cursors may lag behind).
        self.positions: dict[str, int] = {}
        self.applied = 0  # inputs threads applied (not duplicates), for tests and metrics

    def wake(self) -> None:
        """Something was committed: look now rather than at the next poll."""
        self._woken.set()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Feed until cancelled; reports started once it knows where each source resumes."""
        positions = {name: await self._source.cursor(name) for name in (DOCUMENTS, DELIVERIES)}
        self._saved = dict(positions)
        self.positions = positions
        task_status.started()
        try:
            await self._feed_forever(positions)
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(RETRY_AFTER_S):
                await self._save(positions)

    async def _save(self, positions: dict[str, int]) -> None:
        for name, position in positions.items():
            if position > self._saved.get(name, 0):
                try:
                    await self._source.save_cursor(name, position)
                except StoreUnavailable:
                    return  # the next start reads from the last saved one: replays are harmless
                self._saved[name] = position

    async def _feed_forever(self, positions: dict[str, int]) -> None:
        while True:
            self._woken = anyio.Event()
            try:
                busy = await self._pass(positions)
            except StoreUnavailable as exc:
                log.warning("workflow feeder: the store is unavailable, retrying: %s", exc)
                await anyio.sleep(RETRY_AFTER_S)
                continue
            if busy:
                continue
            with anyio.move_on_after(self._poll_s):
                await self._woken.wait()
            # Let a burst's next commits land, so one pass reads many of them.
            await anyio.sleep(self._coalesce_s)

    async def _pass(self, positions: dict[str, int]) -> bool:
        """One pass over both sources; True when one stopped short of what is committed.

        A pass that read up to the newest row waits for the next wake-up (or poll) even when
        its cursor moved: under a burst of documents no thread takes, looping at once would
        read the store again for every few rows committed instead of once per coalesced
        wake-up (py-spy in ingest-burst: the feeder's share of the event loop's samples was
        1.5% looping and 1.6% waiting, its reads mostly wait on aiosqlite's thread; the
        waiting pass bounds the reads to one per wake-up, whatever the machine).
        """
        after = positions[DOCUMENTS]
        documents, reached = await self._source.documents_after(after, self._batch)
        inputs = [i for d in documents for i in self._document_inputs(d)]
        more = False
        if await self._feed(inputs) and await self._advance(positions, DOCUMENTS, reached):
            more = self._short(len(documents), after, reached)
        after = positions[DELIVERIES]
        deliveries, reached = await self._source.deliveries_after(after, self._batch)
        inputs = [i for d in deliveries for i in self._delivery_inputs(d)]
        if await self._feed(inputs) and await self._advance(positions, DELIVERIES, reached):
            more = more or self._short(len(deliveries), after, reached)
        return more

    def _short(self, found: int, after: int, reached: int) -> bool:
        """Whether a read stopped before the newest row: a full batch, or its scan's end."""
        return found >= self._batch or reached - after >= self._scan

    async def _advance(self, positions: dict[str, int], name: str, reached: int) -> bool:
        """Move a cursor to `reached` (every input before it was applied); True if it moved."""
        if reached <= positions[name]:
            return False
        positions[name] = reached
        # Saved now and then, not on every pass: a crash reads again from the saved position,
        # which costs a scan and changes nothing (consumed marks).
        if reached - self._saved.get(name, 0) >= min(self._scan, self._batch):
            await self._source.save_cursor(name, reached)
            self._saved[name] = reached
        return True

    def _document_inputs(self, row: CommittedDocument) -> list[tuple[ThreadKey, ThreadInput]]:
        try:
            envelope = decode_envelope(row.body)
        except InvalidDocument as exc:  # the gateway wrote it: only a bug gets here
            log.error("workflow feeder: outbox row %d is not an envelope: %s", row.position, exc)
            return []
        if envelope.document_type not in INPUT_DOCUMENTS:
            return []
        arrived = DocumentArrived(
            message_id=envelope.message_id,
            correlation_id=envelope.correlation_id,
            partner_id=envelope.partner_id,
            channel="amqp" if envelope.partner_id == self._erp_source else "webhook",
            accepted_at=row.accepted_at,
            document=envelope.document,
            traceparent=envelope.traceparent,
        )
        keys = thread_keys(
            envelope.document, erp_source=self._erp_source, partner_id=envelope.partner_id
        )
        return [(key, arrived) for key in keys]

    def _delivery_inputs(self, row: SettledDelivery) -> list[tuple[ThreadKey, ThreadInput]]:
        try:
            envelope = decode_envelope(row.body)
        except InvalidDocument as exc:
            log.error("workflow feeder: delivery %d is not an envelope: %s", row.delivery_id, exc)
            return []
        outcome = DeliveryOutcome(
            message_id=f"delivery:{row.delivery_id}:{row.outcome}",
            delivered_message_id=row.message_id,
            document_type=row.document_type,
            partner_id=row.partner_id,
            outcome=row.outcome,
            settled_at=row.settled_at,
            reason=row.reason,
            traceparent=envelope.traceparent,
        )
        keys = thread_keys(
            envelope.document, erp_source=self._erp_source, partner_id=envelope.partner_id
        )
        return [(key, outcome) for key in keys]

    async def _feed(self, inputs: Sequence[tuple[ThreadKey, ThreadInput]]) -> bool:
        """Have every input applied, each thread's in order; False if one must be retried."""
        return await feed_in_order(
            inputs,
            self._threads,
            what="thread",
            name=lambda item: item.message_id,
            answered=self._count,
            retry_after_s=RETRY_AFTER_S,
        )

    def _count(self, item: ThreadInput, outcome: StepOutcome) -> None:
        if outcome == "applied":
            self.applied += 1
