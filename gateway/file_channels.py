"""The gateway's side of file channels: the store as the intake's `ReceivedFiles`, and one
poller per partner file channel built from the config.

The poller and the intake live in actors/files and know the store only by its port; this
module adapts `store.files` to it and wires each partner's `[partners.files]` rules to a
`FilePoller` over where the partner's files are: its own SFTP server (`[partners.sftp.server]`,
an `SftpSource`), its folder in the hosted drop box (`[partners.sftp.hosted]`), or a folder on
this machine (`[partners.files] folder`), the last two read as local folders.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Sequence
from contextlib import AsyncExitStack
from pathlib import Path

import anyio
from anyio.abc import TaskGroup, TaskStatus
from prometheus_client import CollectorRegistry

from actors.files.formats import FileRule
from actors.files.intake import FileIntake
from actors.files.poller import ChannelPolicy, FilePoller, RoundWatch
from actors.files.ports import FileRow, Fingerprint, KnownFile, PendingMove, Verdict, X12Files
from actors.files.source import FileSource
from canonical.x12 import X12Profile
from gateway.config import GatewayConfig
from gateway.config.files import FileChannelConfig
from gateway.config.partners import PartnerConfig
from gateway.config.sftp import SftpChannel
from gateway.edi import x12_files_for
from gateway.sftp import ChannelWatch, FileChannelHealth, source_for
from gateway.store import Store
from gateway.store.files import FileLedger, ReceivedFile
from protocols.files import LocalFolderSource
from protocols.sftp import DropBox, SftpSource

__all__ = ["FileChannels", "StoreReceivedFiles", "build_poller", "source_of"]

log = logging.getLogger("gateway.files")

# The channel name of a partner's `[partners.files]` table in the store's records.
FILES_CHANNEL = "files"


class StoreReceivedFiles:
    """`actors.files.ports.ReceivedFiles` over `store.files`."""

    def __init__(self, ledger: FileLedger) -> None:
        self._ledger = ledger

    async def known(self, fingerprint: Fingerprint) -> KnownFile | None:
        found = await self._ledger.find(fingerprint)
        if found is None or found.state == "staging":
            return None
        return _known(found)

    async def begin(self, fingerprint: Fingerprint) -> int | KnownFile:
        claimed = await self._ledger.begin(fingerprint)
        return claimed if isinstance(claimed, int) else _known(claimed)

    async def stage(self, file_id: int, rows: Sequence[FileRow]) -> None:
        await self._ledger.stage(file_id, list(rows))

    async def finish(
        self,
        file_id: int,
        *,
        verdict: Verdict,
        documents: int,
        problems: int,
        reason: str | None,
        rows: Sequence[FileRow],
    ) -> None:
        await self._ledger.finish(
            file_id,
            state=verdict,
            documents=documents,
            problems=problems,
            reason=reason,
            rows=list(rows),
        )

    async def pending_moves(self, partner_id: str, channel: str, limit: int) -> list[PendingMove]:
        return [
            PendingMove(
                file_id=move.id,
                name=move.path,
                size=move.size,
                mtime=move.mtime,
                folder=move.folder,
            )
            for move in await self._ledger.pending_moves(partner_id, channel, limit)
        ]

    async def moved(self, file_id: int) -> None:
        await self._ledger.moved(file_id)


def _known(found: ReceivedFile) -> KnownFile:
    verdict: Verdict = "accepted" if found.state == "accepted" else "refused"
    return KnownFile(
        file_id=found.id,
        verdict=verdict,
        folder=found.folder or ("archive" if verdict == "accepted" else "error"),
    )


def build_poller(
    partner_id: str,
    channel: FileChannelConfig,
    store: Store,
    *,
    spool_root: Path,
    source: FileSource | None = None,
    polling: SftpChannel | None = None,
    on_commit: Callable[[], None] | None = None,
    watch: RoundWatch | None = None,
    clock: Callable[[], float] = time.time,
    x12_profile: X12Profile | None = None,
    x12: X12Files | None = None,
) -> FilePoller:
    """One channel's poller; `source` defaults to the channel's local folder. An SFTP
    channel's `polling` (its interval, settle time and file bound) replaces the channel's.
    `clock` dates what the files carry (received_at, an exception's raised_at)."""
    timing = polling or channel
    files = StoreReceivedFiles(store.files)
    rules = tuple(
        FileRule(
            pattern=rule.pattern,
            document_type=rule.document_type,
            format=rule.format,
            options=rule.csv_feed() if rule.format == "csv" else x12_profile,
        )
        for rule in channel.rules
    )
    policy = ChannelPolicy(
        partner_id=partner_id,
        channel=FILES_CHANNEL,
        rules=rules,
        spool_dir=spool_root / partner_id,
        poll_interval_s=timing.poll_interval_s,
        settle_s=timing.settle_s,
        max_file_bytes=timing.max_file_bytes,
        max_files_per_round=channel.max_files_per_round,
        max_moves_per_round=channel.max_files_per_round,
    )
    intake = FileIntake(
        files,
        partner_id=partner_id,
        channel=FILES_CHANNEL,
        stage_rows=channel.stage_rows,
        max_problems=channel.max_problems,
        clock=clock,
        x12=x12,
    )
    if source is None:
        if channel.folder is None:
            raise ValueError(f"partner {partner_id!r}: a file channel needs a folder")
        source = LocalFolderSource(Path(channel.folder))
    return FilePoller(source, intake, files, policy, on_commit=on_commit, watch=watch)


def source_of(partner: PartnerConfig, box: DropBox | None) -> FileSource:
    """Where `partner`'s files are: its SFTP server, its drop box folder, or its local folder."""
    sftp = partner.sftp
    if sftp is not None and sftp.server is not None:
        return source_for(partner)
    if sftp is not None:
        if box is None:
            raise ValueError(f"partner {partner.id!r} is hosted, and no drop box runs")
        return LocalFolderSource(box.folder_of(partner.id))
    if partner.files is None or partner.files.folder is None:
        raise ValueError(f"partner {partner.id!r}: a file channel needs a folder or an sftp table")
    return LocalFolderSource(Path(partner.files.folder))


class FileChannels:
    """Every configured partner's file channel poller, each with its connection a unit of its own.

    `health` keeps the channels' metrics (on a registry of its own if not given); `drop_box` is the
    running hosted drop box, whose folders the hosted partners' pollers read. `adopt` swaps the
    channels of partners whose configuration changed (a reload) while the others run on.
    """

    def __init__(
        self,
        config: GatewayConfig,
        store: Store,
        *,
        on_commit: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,
        health: FileChannelHealth | None = None,
        drop_box: DropBox | None = None,
    ) -> None:
        spool_root = Path(config.store.path).parent / "spool"
        self.health = health or FileChannelHealth(CollectorRegistry())
        self.pollers: list[FilePoller] = []
        self.watches: dict[str, ChannelWatch] = {}
        for partner in config.partners:
            if partner.files is None:
                if partner.sftp is not None:
                    log.warning(
                        "partner has [partners.sftp] and no [partners.files] rules: its"
                        " incoming folder is not read",
                        extra={"fields": {"partner": partner.id}},
                    )
                continue
            watch = self.watches[partner.id] = self.health.watch(partner.id)
            self.pollers.append(
                build_poller(
                    partner.id,
                    partner.files,
                    store,
                    spool_root=spool_root,
                    source=source_of(partner, drop_box),
                    polling=partner.sftp,
                    on_commit=on_commit,
                    watch=watch,
                    clock=clock,
                    x12_profile=partner.x12,
                    x12=x12_files_for(partner, store),
                )
            )
        self._units: TaskGroup | None = None
        # Each partner's last channel to run: set once it has stopped and its connection closed.
        self._ended: dict[str, anyio.Event] = {}

    def poller(self, partner_id: str) -> FilePoller:
        """Return the poller of `partner_id`'s channel (KeyError if it has none)."""
        for poller in self.pollers:
            if poller.policy.partner_id == partner_id:
                return poller
        raise KeyError(partner_id)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run every poller until cancelled; started once each has started. Each SFTP
        connection closes when its poller ends."""
        async with anyio.create_task_group() as self._units:
            for poller in self.pollers:
                await self._units.start(self._channel, poller, self._ends(poller), None)
            task_status.started()

    def adopt(self, new: FileChannels, changed: Collection[str]) -> None:
        """Swap in the channels of `new` for the partners in `changed`; the rest run on.

        A reload calls it, with no await between it and the rest of the swap: `new` is built
        from the new config with the same store, clock, `on_commit`, `health` and drop box
        (building opens no connection and starts nothing); `changed` holds the ids of the
        partners whose `PartnerConfig` differs between the two configs, and the ids added and
        removed.

        - A partner in `changed`, or absent from `new`: its poller stops at a safe point (a file
          being taken is committed and moved under the old config first), then its SFTP
          connection closes.
        - A partner in `new` that is in `changed` or has no poller running: `new`'s poller
          starts once the partner's old one has ended (never two on one folder at once).
        - Any other partner keeps its poller, untouched; `new`'s one for it is dropped unused.

        Call it only once `run()` has started.
        """
        units = self._units
        if units is None:
            raise RuntimeError("adopt() before run(): the file channels are not running")
        running = {poller.policy.partner_id: poller for poller in self.pollers}
        incoming = {poller.policy.partner_id: poller for poller in new.pollers}
        for partner_id, poller in running.items():
            if partner_id in changed or partner_id not in incoming:
                poller.stop()
                del self.pollers[self.pollers.index(poller)]
                del self.watches[partner_id]
                if partner_id not in incoming:
                    self.health.forget(partner_id)
        for partner_id, poller in incoming.items():
            if partner_id in running and partner_id not in changed:
                continue
            self.pollers.append(poller)
            self.watches[partner_id] = new.watches[partner_id]
            after = self._ended.get(partner_id)
            units.start_soon(self._channel, poller, self._ends(poller), after)

    def _ends(self, poller: FilePoller) -> anyio.Event:
        """Return the event set once `poller` has ended, which its successor waits for."""
        ended = self._ended[poller.policy.partner_id] = anyio.Event()
        return ended

    async def _channel(
        self,
        poller: FilePoller,
        ended: anyio.Event,
        after: anyio.Event | None,
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """One partner's poller with its connection, once the channel it replaces has ended."""
        try:
            if after is not None:
                await after.wait()
            async with AsyncExitStack() as connection:
                if isinstance(poller.source, SftpSource):
                    await connection.enter_async_context(poller.source)
                await poller.run(task_status=task_status)
        finally:
            ended.set()
