"""The poller: one per partner file channel, taking each complete file once, then moving it.

Each round (every `poll_interval_s`):

1. Moves still pending from earlier rounds (a dropped connection, a crash between commit and
   move) are done first: the store says which committed files are not yet in their folder.
   One whose name now lists with another size or mtime is a new upload under the old name: the
   old one is gone, so the move is recorded as done without touching the new file.
2. The incoming folder is listed. A file is taken only once its size and mtime are the same as
   in a listing at least `settle_s` earlier (SFTP gives mtime in whole seconds: FIELD-NOTES).
3. A taken file is matched to a rule by name, fetched to the spool folder (at most
   `max_file_bytes`), handed to the intake, and only after the intake's commit moved to
   `archive` (accepted, duplicate) or `error` (refused). The move is recorded as done after it
   happened; if that record is lost, the next round's move finds nothing to move: done.
4. Files the store holds for the outbound folder (X12 acks owed by committed files, outbound
   interchanges) are put there, before and after the round's files are taken.

A failing round (the transport or the store unavailable) is logged and the next one retries;
nothing is lost in between, since nothing moves before its commit.

`stop()` ends a running poller at a safe point (a reload replacing the channel): a file being
taken is committed and moved first; a listing, a put or the wait between rounds just ends.
"""

from __future__ import annotations

import fnmatch
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import anyio
from anyio.abc import TaskStatus
from msgspec import Struct

from actors.files.formats import FileRule
from actors.files.intake import FileIntake, IntakeResult
from actors.files.ports import ReceivedFiles
from actors.files.source import FileSource
from canonical.files import RemoteFile

__all__ = ["ChannelPolicy", "FilePoller", "RoundReport", "RoundWatch"]

log = logging.getLogger(__name__)


class ChannelPolicy(Struct, frozen=True, kw_only=True):
    """One channel's schedule and bounds (gateway/config/files.py supplies them)."""

    partner_id: str
    channel: str
    rules: tuple[FileRule, ...]
    spool_dir: Path
    poll_interval_s: float = 10.0
    settle_s: float = 2.0
    max_file_bytes: int = 64 * 1024 * 1024
    # Files taken in one round, and pending moves retried in one: a folder of thousands is
    # worked through over several rounds, each bounded.
    max_files_per_round: int = 100
    max_moves_per_round: int = 100


class RoundReport(Struct, kw_only=True):
    """What one round did."""

    moved: int = 0
    taken: list[tuple[str, IntakeResult]] = []
    waiting: int = 0  # files listed but not yet settled
    put: list[str] = []  # files written to the outbound folder (acks, interchanges)


class RoundWatch(Protocol):
    """Told how each round ended: the gateway's view of a channel's health (its logs, metrics)."""

    def succeeded(self) -> None:
        """A round ran to its end."""
        ...

    def failed(self, error: Exception) -> bool:
        """A round failed with `error`; True when the watch reported it (the poller then logs
        nothing itself), False to leave it to the poller's own log line."""
        ...


class FilePoller:
    """Polls one channel's `FileSource`; run `run()` in a task group, or call `poll_once()`."""

    def __init__(
        self,
        source: FileSource,
        intake: FileIntake,
        files: ReceivedFiles,
        policy: ChannelPolicy,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_commit: Callable[[], None] | None = None,
        watch: RoundWatch | None = None,
    ) -> None:
        self.source = source
        self._watch = watch
        # Told after each file that committed rows: readers of the outbox may look now.
        self._on_commit = on_commit
        self.intake = intake
        self.files = files
        self.policy = policy
        self._clock = clock
        # name -> (size, mtime, when first seen so): the settle check's memory.
        self._listed: dict[str, tuple[int, int, float]] = {}
        self.rounds = 0
        self.failed_rounds = 0
        # `stop()` cancels this scope, at once or once the file being taken is committed.
        self._running = anyio.CancelScope()
        self._stopping = False
        self._taking = False

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Poll until cancelled, or until `stop()`; once only."""
        self.policy.spool_dir.mkdir(parents=True, exist_ok=True)
        task_status.started()
        with self._running:
            while True:
                await self.poll_once()
                await anyio.sleep(self.policy.poll_interval_s)

    def stop(self) -> None:
        """End `run()` at the next safe point: after the file being taken, if any, is committed
        and moved; at once otherwise (nothing else it does needs finishing: see the module)."""
        self._stopping = True
        if not self._taking:
            self._running.cancel()

    async def poll_once(self) -> RoundReport:
        """One round; a failure is logged and counted, and the next round retries."""
        self.rounds += 1
        report = RoundReport()
        try:
            await self._round(report)
        except Exception as exc:
            # The transport or the store: recoverable by the next round, since nothing is
            # moved before its commit and every commit is keyed by the file's fingerprint.
            self.failed_rounds += 1
            if self._watch is not None and self._watch.failed(exc):
                return report
            log.exception(
                "file channel round failed; the next round retries",
                extra={
                    "fields": {"partner": self.policy.partner_id, "channel": self.policy.channel}
                },
            )
        else:
            if self._watch is not None:
                self._watch.succeeded()
        return report

    async def _round(self, report: RoundReport) -> None:
        listing = await self.source.list_incoming()
        pending = await self.files.pending_moves(
            self.policy.partner_id, self.policy.channel, self.policy.max_moves_per_round
        )
        by_name = {entry.name: entry for entry in listing}
        for move in pending:
            entry = by_name.get(move.name)
            if entry is not None and (entry.size, entry.mtime) == (move.size, move.mtime):
                # Still there: moved now, and never taken again meanwhile (a failed move
                # ends the round before any file is taken).
                await self.source.move(move.name, move.folder)
                by_name.pop(move.name)
            await self.files.moved(move.file_id)
            report.moved += 1
        now = self._clock()
        ready = self._settled(list(by_name.values()), now)
        report.waiting = len(by_name) - len(ready)
        await self._put_outgoing(report)
        for entry in ready[: self.policy.max_files_per_round]:
            with self._unstoppable():
                result = await self._take(entry)
            report.taken.append((entry.name, result))
            self._listed.pop(entry.name, None)
        if report.taken:
            await self._put_outgoing(report)

    @contextmanager
    def _unstoppable(self) -> Iterator[None]:
        """A `stop()` meanwhile takes effect at the end of the block."""
        self._taking = True
        try:
            yield
        finally:
            self._taking = False
            if self._stopping:
                self._running.cancel()

    async def _put_outgoing(self, report: RoundReport) -> None:
        """Put the files the store holds for the outbound folder (X12 acks, interchanges).

        Each is recorded as put after the put; if that record is lost, the next round puts
        it again under a suffixed name (never overwriting): a partner sees the same ISA13
        twice and refuses the second as a replay, which is what X12 expects.
        """
        x12 = self.intake.x12
        if x12 is None:
            return
        outgoing = await x12.outgoing(
            self.policy.partner_id, self.policy.channel, self.policy.max_moves_per_round
        )
        for one in outgoing:
            final = await self.source.put(one.name, one.body)
            await x12.put_done(one.id, final)
            report.put.append(final)

    def _settled(self, listing: Sequence[RemoteFile], now: float) -> list[RemoteFile]:
        """The entries unchanged for `settle_s`; remembers the rest for the next round."""
        ready = []
        seen: dict[str, tuple[int, int, float]] = {}
        for entry in listing:
            before = self._listed.get(entry.name)
            if before is not None and before[:2] == (entry.size, entry.mtime):
                seen[entry.name] = before
                if now - before[2] >= self.policy.settle_s:
                    ready.append(entry)
            else:
                seen[entry.name] = (entry.size, entry.mtime, now)
        self._listed = seen
        return ready

    async def _take(self, entry: RemoteFile) -> IntakeResult:
        spooled = self.policy.spool_dir / f"{self.policy.partner_id}.{self.policy.channel}.spool"
        try:
            try:
                await self.source.fetch(entry.name, spooled, max_bytes=self.policy.max_file_bytes)
            except ValueError as exc:  # past max_file_bytes, or not a regular file
                result = await self.intake.refuse_unread(entry, "unreadable", str(exc))
            else:
                result = await self.intake.take(spooled, entry, self.rule_for(entry.name))
        finally:
            spooled.unlink(missing_ok=True)
        log.info(
            "file taken",
            extra={
                "fields": {
                    "partner": self.policy.partner_id,
                    "file": entry.name,
                    "outcome": result.outcome,
                    "documents": result.documents,
                    "problems": result.problems,
                    "reason": result.reason,
                    "traceparent": result.traceparent,
                }
            },
        )
        if self._on_commit is not None and result.outcome != "duplicate":
            self._on_commit()
        # Only after the commit. A move that fails here stays pending in the store (or, for a
        # duplicate, the file is simply seen again and is a duplicate again).
        await self.source.move(entry.name, result.folder)
        if result.file_id is not None:
            await self.files.moved(result.file_id)
        return result

    def rule_for(self, name: str) -> FileRule | None:
        """The first rule whose pattern matches `name` (case-sensitive, shell-style)."""
        return next((r for r in self.policy.rules if fnmatch.fnmatchcase(name, r.pattern)), None)
