"""The gateway's side of X12 over file channels: the store as the intake's `X12Files`.

The intake and the poller (actors/files) know the store only by their ports; this module
adapts `store.edi` (and `store.files`, whose staged rows it purges after a commit) to
`actors.files.ports.X12Files`, and builds one for a partner from its config.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from actors.files.ports import FileRow, OutgoingFile, Verdict
from canonical.x12 import InterchangeKey, X12Reading
from gateway.config.partners import PartnerConfig
from gateway.store import Store

__all__ = ["StoreX12Files", "x12_files_for"]


class StoreX12Files:
    """`actors.files.ports.X12Files` over `store.edi`, with a partner's replay window."""

    def __init__(
        self,
        store: Store,
        *,
        replay_window_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._window_s = replay_window_s
        self._clock = clock

    async def seen(self, partner_id: str, keys: Sequence[InterchangeKey]) -> set[InterchangeKey]:
        since = self._clock() - self._window_s
        return await self._store.edi.seen(partner_id, keys, since=since)

    async def finish(
        self,
        file_id: int,
        *,
        verdict: Verdict,
        documents: int,
        problems: int,
        reason: str | None,
        rows: Sequence[FileRow],
        answers: X12Reading,
        error_folder: bool,
    ) -> None:
        await self._store.edi.finish_file(
            file_id,
            state=verdict,
            documents=documents,
            problems=problems,
            reason=reason,
            rows=list(rows),
            answers=answers,
            error_folder=error_folder,
        )
        await self._store.files.purge(file_id)

    async def outgoing(self, partner_id: str, channel: str, limit: int) -> list[OutgoingFile]:
        return [
            OutgoingFile(id=one.id, name=one.name, body=one.body)
            for one in await self._store.edi.outgoing(partner_id, channel, limit)
        ]

    async def put_done(self, file_id: int, final_name: str) -> None:
        await self._store.edi.put_done(file_id, final_name)


def x12_files_for(partner: PartnerConfig, store: Store) -> StoreX12Files:
    """The X12 port for one partner's file channel."""
    return StoreX12Files(store, replay_window_s=partner.edi.replay_window_s)
