"""An X12 file in the intake: read it, refuse replayed interchanges, and say what is owed.

The reading (`canonical.x12.decode_file`) runs in a worker thread. Before anything is
committed, the interchange keys it found are checked against those the store accepted within
its window (`X12Files.seen`): a replayed one is answered with TA1 025 and nothing behind it
is read (`canonical.x12.refuse_duplicate`). Only the sound, new interchanges' keys are left
on the reading, to be remembered with the file's commit, where the acks it owes are numbered
and kept to send (`X12Files.finish`).
"""

from __future__ import annotations

from pathlib import Path

import anyio.to_thread
import msgspec

from actors.files.formats import FileRule
from actors.files.ports import X12Files
from canonical.files import FileDecoding
from canonical.x12 import X12Profile, X12Reading, decode_file, refuse_duplicate

__all__ = ["profile_of", "read_x12", "without_answers"]


def profile_of(rule: FileRule) -> X12Profile | None:
    """The rule's X12 profile (the partner's `[partners.x12]`), None for the default one."""
    return rule.options if isinstance(rule.options, X12Profile) else None


def _decode(path: Path, file_name: str, sha256: str, profile: X12Profile | None) -> X12Reading:
    # The poller fetched at most the channel's max_file_bytes: the file fits in memory.
    return decode_file(path.read_bytes(), file_name=file_name, sha256=sha256, profile=profile)


async def read_x12(
    store: X12Files, path: Path, *, partner_id: str, file_name: str, sha256: str, rule: FileRule
) -> X12Reading:
    """Read one spooled X12 file, with the interchanges the store has seen refused."""
    reading = await anyio.to_thread.run_sync(_decode, path, file_name, sha256, profile_of(rule))
    sound = [report.key for report in reading.interchanges if report.note == "000"]
    replayed = await store.seen(partner_id, sound) if sound else set()
    for key in sound:
        if key in replayed:
            reading = refuse_duplicate(reading, key)
    fresh = tuple(key for key in sound if key not in replayed)
    return msgspec.structs.replace(reading, keys=fresh)


def without_answers(reading: X12Reading) -> X12Reading:
    """A reading that records nothing and owes nothing (its file was refused by the intake)."""
    return X12Reading(decoding=FileDecoding(), profile=reading.profile)
