"""The inventory feeder: hands the positions what the gateway committed, in commit order.

Off the request path: it reads committed outbox rows of `inventory_delta` and
`inventory_position` (from webhooks, files and the ERP) from a cursor saved in the store and
asks each document's position actor to apply it; positions apply theirs concurrently, each
one's in commit order. Each pass also ticks the positions whose gap or coalesced
availability event is due (a due time the store keeps per position, indexed). The cursor
moves past a batch only once all of it was applied, so a crash replays at most a batch, and a
replay changes nothing (each input's consumed mark).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence

import anyio
from anyio.abc import TaskStatus

from actors.inventory.inputs import (
    INPUT_DOCUMENTS,
    DeltaArrived,
    PositionInput,
    PositionKey,
    SnapshotArrived,
    Tick,
)
from actors.inventory.ports import CommittedDocument, InventoryInputs, StepOutcome
from actors.keyed_feed import feed_in_order
from actors.runtime import ActorRef
from canonical import decode_envelope
from canonical.errors import InvalidDocument, StoreUnavailable
from canonical.inventory import InventoryDelta, InventoryPosition

__all__ = ["InventoryFeeder"]

log = logging.getLogger(__name__)

# After a position could not take an input (store or actor unavailable): wait, then retry.
RETRY_AFTER_S = 1.0

Positions = Callable[[PositionKey], ActorRef[PositionInput, StepOutcome]]


class InventoryFeeder:
    """Feeds committed inventory documents and due ticks to the positions; run it in a group."""

    def __init__(
        self,
        source: InventoryInputs,
        positions: Positions,
        *,
        clock: Callable[[], float],
        batch: int,
        poll_s: float,
        scan: int,
        coalesce_s: float = 0.0,
    ) -> None:
        self._source = source
        self._positions = positions
        self._clock = clock
        self._batch = batch
        self._poll_s = poll_s
        self._scan = scan
        self._coalesce_s = coalesce_s
        self._woken = anyio.Event()
        self._saved = 0
        self.position = 0  # how far the documents were applied (the saved cursor may lag)
        self.applied = 0  # inputs positions applied (not duplicates), for tests and metrics

    def wake(self) -> None:
        """Something was committed: look now rather than at the next poll."""
        self._woken.set()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Feed until cancelled; reports started once it knows where reading resumes."""
        self.position = self._saved = await self._source.cursor()
        task_status.started()
        try:
            while True:
                self._woken = anyio.Event()
                try:
                    busy = await self.feed_once()
                except StoreUnavailable as exc:
                    log.warning("inventory feeder: the store is unavailable, retrying: %s", exc)
                    await anyio.sleep(RETRY_AFTER_S)
                    continue
                if busy:
                    continue
                with anyio.move_on_after(self._poll_s):
                    await self._woken.wait()
                # Let a burst's next commits land, so one pass reads many of them (every group
                # commit wakes the feeder, most with no inventory document in it).
                await anyio.sleep(self._coalesce_s)
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(RETRY_AFTER_S):
                # Unsaved, the next start reads from the last saved one: replays are harmless.
                if self.position > self._saved:
                    with contextlib.suppress(StoreUnavailable):
                        await self._source.save_cursor(self.position)

    async def feed_once(self) -> bool:
        """One pass: documents, then due ticks; True when documents remain to be read."""
        after = self.position
        documents, reached = await self._source.documents_after(after, self._batch)
        inputs = [i for d in documents for i in self._inputs(d)]
        more = False
        if await self._feed(inputs) and reached > after:
            self.position = reached
            if reached - self._saved >= min(self._scan, self._batch):
                await self._source.save_cursor(reached)
                self._saved = reached
            more = len(documents) >= self._batch or reached - after >= self._scan
        now = self._clock()
        due = await self._source.due(now, self._batch)
        await self._feed([(key, Tick(now=now)) for key in due])
        return more

    def _inputs(self, row: CommittedDocument) -> list[tuple[PositionKey, PositionInput]]:
        try:
            envelope = decode_envelope(row.body)
        except InvalidDocument as exc:  # the gateway wrote it: only a bug gets here
            log.error("inventory feeder: outbox row %d is not an envelope: %s", row.position, exc)
            return []
        if envelope.document_type not in INPUT_DOCUMENTS:
            return []
        document = envelope.document
        item: PositionInput
        if isinstance(document, InventoryDelta):
            item = DeltaArrived(
                message_id=envelope.message_id,
                correlation_id=envelope.correlation_id,
                accepted_at=row.accepted_at,
                delta=document,
            )
        elif isinstance(document, InventoryPosition):
            item = SnapshotArrived(
                message_id=envelope.message_id,
                correlation_id=envelope.correlation_id,
                accepted_at=row.accepted_at,
                position=document,
            )
        else:
            return []
        return [(PositionKey(document.sku, document.location_id), item)]

    async def _feed(self, inputs: Sequence[tuple[PositionKey, PositionInput]]) -> bool:
        """Have every input applied, each position's in order; False if one must be retried."""
        return await feed_in_order(
            inputs,
            self._positions,
            what="position",
            name=lambda item: "a tick" if isinstance(item, Tick) else item.message_id,
            answered=self._count,
            retry_after_s=RETRY_AFTER_S,
        )

    def _count(self, item: PositionInput, outcome: StepOutcome) -> None:
        if outcome == "applied" and not isinstance(item, Tick):
            self.applied += 1
