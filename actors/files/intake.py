"""The file intake: one received file becomes one acceptance carrying all its documents.

Given a spooled file, its listing entry and the rule it matched, `FileIntake.take` hashes it,
asks the store whether the fingerprint is known (a duplicate: nothing new), decodes it with the
rule's format (`actors.files.formats`), turns each document into an envelope with the partner,
an idempotency key derived from the fingerprint and the position, and the provenance, and each
problem into an `ExceptionNotice`; then commits the lot with the fingerprint
(`ReceivedFiles.finish`). Envelopes are routed like webhooks (`{document}.{partner}`), so they
reach the queue, and the purchase-order threads read acks, ASNs and invoices from the outbox.
Each file starts a W3C trace of its own (`new_traceparent`): every envelope made of it carries
the same `traceparent`, so the ERP sees the documents of one file as one trace, and the poller
logs it with the file.

An X12 file, when the intake has the store's `X12Files` port, is read by `actors.files.x12`:
replayed interchanges refused (TA1 025), and the file committed with its interchange keys and
the acks it owes (`X12Files.finish`), which the poller puts in the outbound folder; a file
with a rejected set still delivers its good sets and goes to the error folder.

Memory stays bounded whatever the file's length: rows go to the store in chunks of
`stage_rows` (`ReceivedFiles.stage`), invisible until the commit. Decoding runs in a worker
thread, a chunk at a time, so a long file does not stall the event loop.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Literal

import anyio.to_thread
from msgspec import Struct

from actors.files.formats import DECODERS, FileDecoder, FileRefused, FileRule, from_decoding
from actors.files.ports import FileRow, Fingerprint, KnownFile, ReceivedFiles, X12Files
from actors.files.source import Folder
from actors.files.x12 import read_x12, without_answers
from canonical import DocumentRef, ExceptionNotice, encode_envelope, new_envelope, routing_key
from canonical.common import LineNumber
from canonical.documents import Document
from canonical.files import FileDocument, FileProblem, Provenance, RemoteFile
from canonical.ids import new_message_id
from canonical.tracecontext import new_traceparent
from canonical.x12 import X12Reading

__all__ = [
    "DEFAULT_MAX_PROBLEMS",
    "DEFAULT_STAGE_ROWS",
    "FileIntake",
    "IntakeResult",
    "file_digest",
]

# Rows handed to the store at a time: one write of a few hundred KiB.
DEFAULT_STAGE_ROWS = 500
# Problems (bad rows, rejected sets) one file may have and still be accepted for its good
# rows; past it the file is refused whole: a file mostly wrong is a wrong mapping, and an
# exception per line of it would bury the operator.
DEFAULT_MAX_PROBLEMS = 1000
# Characters of a problem's detail kept in its exception's description.
MAX_DESCRIPTION = 2000
# What hashing reads at a time.
HASH_CHUNK_BYTES = 1024 * 1024
_MAX_LINE = 999_999

Outcome = Literal["accepted", "duplicate", "refused"]


class IntakeResult(Struct, frozen=True, kw_only=True):
    """What became of a file: where it goes on the partner's side, and what it carried.

    `file_id` names the store's record whose move is pending (None for a duplicate: its
    record was moved, or will be, on its own account).
    """

    outcome: Outcome
    folder: Folder
    file_id: int | None = None
    documents: int = 0
    problems: int = 0
    reason: str | None = None
    traceparent: str | None = None  # the trace the file's envelopes carry (None: duplicate)


def file_digest(fingerprint: Fingerprint) -> str:
    """A short digest of the fingerprint: the stem of every idempotency key the file yields."""
    text = "\0".join(
        (
            fingerprint.partner_id,
            fingerprint.channel,
            fingerprint.path,
            str(fingerprint.size),
            str(fingerprint.mtime),
            fingerprint.sha256,
        )
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def sha256_of(path: Path) -> str:
    """The hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


class _Refusal(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class FileIntake:
    """Takes one partner channel's files into the store, each exactly once."""

    def __init__(
        self,
        files: ReceivedFiles,
        *,
        partner_id: str,
        channel: str,
        decoders: Mapping[str, FileDecoder] = DECODERS,
        stage_rows: int = DEFAULT_STAGE_ROWS,
        max_problems: int = DEFAULT_MAX_PROBLEMS,
        clock: Callable[[], float] = time.time,
        x12: X12Files | None = None,
    ) -> None:
        if stage_rows < 1 or max_problems < 0:
            raise ValueError("stage_rows must be at least 1 and max_problems at least 0")
        self._files = files
        self.partner_id = partner_id
        self.channel = channel
        self._decoders = decoders
        self._stage_rows = stage_rows
        self._max_problems = max_problems
        self._clock = clock
        # With it, X12 files are checked for replays and answered (997/999/TA1): see
        # `actors.files.x12`. Without it, "x12" is decoded like any other format.
        self.x12 = x12

    async def take(self, spooled: Path, entry: RemoteFile, rule: FileRule | None) -> IntakeResult:
        """Commit `spooled` (a local copy of `entry`) once; see `IntakeResult`.

        Raises what the store raises (`StoreUnavailable`): nothing is then committed, and the
        file is taken again on a later round.
        """
        sha256 = await anyio.to_thread.run_sync(sha256_of, spooled)
        fingerprint = Fingerprint(
            partner_id=self.partner_id,
            channel=self.channel,
            path=entry.name,
            size=entry.size,
            mtime=entry.mtime,
            sha256=sha256,
        )
        known = await self._files.known(fingerprint)
        if known is not None:
            return _duplicate(known)
        claimed = await self._files.begin(fingerprint)
        if isinstance(claimed, KnownFile):
            return _duplicate(claimed)
        run = _Run(self, fingerprint, claimed, rule)
        try:
            if rule is None:
                raise _Refusal("no_rule", f"{entry.name!r} matches no file pattern of the channel")
            decoder = self._decoders.get(rule.format)
            if decoder is None:
                raise _Refusal("unknown_format", f"no decoder for format {rule.format!r}")
            if rule.format == "x12" and self.x12 is not None:
                run.x12 = await read_x12(
                    self.x12,
                    spooled,
                    partner_id=self.partner_id,
                    file_name=entry.name,
                    sha256=sha256,
                    rule=rule,
                )
                items = from_decoding(run.x12.decoding)
            else:
                items = decoder(spooled, file_name=entry.name, sha256=sha256, rule=rule)
            try:
                await run.consume(items)
            finally:
                close = getattr(items, "close", None)
                if close is not None:
                    close()  # a generator refused mid-file still closes its file
        except _Refusal as refusal:
            return await run.refuse(refusal.code, refusal.detail)
        return await run.accept()

    async def refuse_unread(self, entry: RemoteFile, code: str, detail: str) -> IntakeResult:
        """Refuse a file that could not be read (too large): recorded by its listing entry."""
        fingerprint = Fingerprint(
            partner_id=self.partner_id,
            channel=self.channel,
            path=entry.name,
            size=entry.size,
            mtime=entry.mtime,
            sha256="unread",
        )
        claimed = await self._files.begin(fingerprint)
        if isinstance(claimed, KnownFile):
            return _duplicate(claimed)
        return await _Run(self, fingerprint, claimed, None).refuse(code, detail)

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._clock(), dt.UTC)


def _duplicate(known: KnownFile) -> IntakeResult:
    return IntakeResult(outcome="duplicate", folder=known.folder)


class _Run:
    """One file being taken: its rows so far, staged in chunks."""

    def __init__(
        self, intake: FileIntake, fingerprint: Fingerprint, file_id: int, rule: FileRule | None
    ) -> None:
        self.intake = intake
        self.fingerprint = fingerprint
        self.file_id = file_id
        self.rule = rule
        self.stem = file_digest(fingerprint)
        self.causation = f"file:{self.stem}"
        self.traceparent = new_traceparent()
        self.received_at = intake._now()
        self.chunk: list[FileRow] = []
        self.position = 0
        self.documents = 0
        self.problems = 0
        self.x12: X12Reading | None = None  # an X12 file's reading, when the intake checks

    async def consume(self, items: Iterator[FileDocument | FileProblem]) -> None:
        """Take every item the decoder yields, decoding a chunk at a time in a worker thread."""
        size = self.intake._stage_rows
        while True:
            try:
                batch = await anyio.to_thread.run_sync(_take, items, size)
            except FileRefused as exc:
                raise _Refusal(exc.code, exc.detail) from None
            for item in batch:
                if isinstance(item, FileDocument):
                    self.documents += 1
                    self._add(item.document, item.provenance)
                else:
                    self.problems += 1
                    if self.problems > self.intake._max_problems:
                        raise _Refusal(
                            "too_many_problems",
                            f"more than {self.intake._max_problems} bad rows or sets "
                            f"(the last: {item.detail})",
                        )
                    self._add(self._notice(item.detail, item.provenance), item.provenance)
            if len(self.chunk) >= size:
                await self.intake._files.stage(self.file_id, self.chunk)
                self.chunk = []
            if len(batch) < size:
                return

    async def accept(self) -> IntakeResult:
        # An X12 file with a rejected set or interchange: its good sets are taken (the 997
        # says they were accepted), and the file goes to the error folder for people to see.
        error = self.x12 is not None and bool(self.x12.problems)
        await self._finish("accepted", None, self.x12, error_folder=error)
        return IntakeResult(
            outcome="accepted",
            folder="error" if error else "archive",
            file_id=self.file_id,
            documents=self.documents,
            problems=self.problems,
            traceparent=self.traceparent,
        )

    async def refuse(self, code: str, detail: str) -> IntakeResult:
        """Throw away what was staged; commit the refusal and one exception saying why."""
        where = Provenance(file=self.fingerprint.path, sha256=self.fingerprint.sha256)
        self.chunk, self.position = [], 0
        self._add(
            self._notice(f"{self.fingerprint.path}: refused ({code}): {detail}", where), where
        )
        answers = self.x12
        if answers is not None and answers.decoding.refused is None:
            # Refused by the intake, not the reader (too many problems): the acks the
            # reading owes would say the sets were taken, so none is sent.
            answers = without_answers(answers)
        self.documents = 0
        await self._finish("refused", code, answers, error_folder=True)
        return IntakeResult(
            outcome="refused",
            folder="error",
            file_id=self.file_id,
            problems=self.problems,
            reason=code,
            traceparent=self.traceparent,
        )

    async def _finish(
        self,
        verdict: Literal["accepted", "refused"],
        reason: str | None,
        answers: X12Reading | None,
        *,
        error_folder: bool,
    ) -> None:
        x12 = self.intake.x12
        if answers is not None and x12 is not None:
            await x12.finish(
                self.file_id,
                verdict=verdict,
                documents=self.documents,
                problems=self.problems,
                reason=reason,
                rows=self.chunk,
                answers=answers,
                error_folder=error_folder,
            )
            return
        await self.intake._files.finish(
            self.file_id,
            verdict=verdict,
            documents=self.documents,
            problems=self.problems,
            reason=reason,
            rows=self.chunk,
        )

    def _add(self, document: Document, provenance: Provenance) -> None:
        self.position += 1
        envelope = new_envelope(
            document,
            partner_id=self.intake.partner_id,
            idempotency_key=f"file:{self.stem}:{self.position}",
            causation_id=self.causation,
            received_at=self.received_at,
            provenance=provenance,
            traceparent=self.traceparent,
        )
        self.chunk.append(
            FileRow(
                position=self.position,
                message_id=envelope.message_id,
                document_type=envelope.document_type,
                schema_version=envelope.schema_version,
                routing_key=routing_key(envelope.document_type, envelope.partner_id),
                correlation_id=envelope.correlation_id,
                causation_id=envelope.causation_id,
                idempotency_key=envelope.idempotency_key,
                body=encode_envelope(envelope),
            )
        )

    def _notice(self, detail: str, where: Provenance) -> ExceptionNotice:
        line: LineNumber | None = where.line if where.line and where.line <= _MAX_LINE else None
        return ExceptionNotice(
            exception_id=new_message_id(),
            kind="invalid_document",
            severity="error",
            raised_at=self.received_at,
            reference=DocumentRef(
                document_type=self.rule.document_type if self.rule else "exception"
            ),
            description=detail[:MAX_DESCRIPTION],
            line_number=line,
        )


def _take(
    items: Iterator[FileDocument | FileProblem], size: int
) -> list[FileDocument | FileProblem]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            break
    return batch
