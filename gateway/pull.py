"""Wire the pull API: pulling partners' policies, and the store as their `MessageBox`."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.config import PartnerConfig
from gateway.store import Store
from protocols.http.pull import PulledMessage, PullPolicy

__all__ = ["StoreMessageBox", "pull_policies"]


def pull_policies(partners: Iterable[PartnerConfig]) -> dict[str, PullPolicy]:
    """Return the pull API's policy for every partner with a `pull` table."""
    return {
        p.id: PullPolicy(token=p.pull.token.reveal().encode(), max_batch=p.pull.max_batch)
        for p in partners
        if p.pull is not None
    }


class StoreMessageBox:
    """Pulling partners' messages are their pending deliveries; the cursor is the delivery id."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def messages(self, partner_id: str, after: int, limit: int, /) -> list[PulledMessage]:
        found = await self.store.deliveries.deliveries(
            partner_id=partner_id, state="pending", after_id=after, limit=limit
        )
        return [
            PulledMessage(
                message_id=d.message_id, document_type=d.document_type, cursor=d.id, body=d.body
            )
            for d in found
        ]

    async def acknowledge(
        self, partner_id: str, /, *, up_to: int | None, message_ids: tuple[str, ...]
    ) -> int:
        return await self.store.deliveries.acknowledge(
            partner_id, up_to=up_to, message_ids=message_ids
        )
