"""`gateway backup --config FILE --out PATH`: a consistent copy of the store, taken while it runs.

`VACUUM INTO` on a read-only connection copies the database as one read transaction sees it: in
WAL mode that snapshot is every commit made before the copy started and nothing after, and
the gateway's writer keeps committing meanwhile (readers do not block it). The copy is written
under a temporary name beside PATH, checked with `PRAGMA integrity_check`, then renamed; an
existing PATH is never overwritten. Only `[store]` is read from the config: no partner's
secret needs to be present to take a backup.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from pathlib import Path

from canonical.errors import ConfigError, GatewayError
from gateway.config.partial import load_store_settings

__all__ = ["BackupError", "backup_store", "run_backup_command"]

# Waits this long for a lock (a checkpoint, a migration) before giving up.
BACKUP_BUSY_TIMEOUT_MS = 30_000
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class BackupError(GatewayError):
    """The copy could not be taken or did not check out; `cause` says which, for scripts."""

    reason, title = "backup-failed", "Backup failed"

    def __init__(self, cause: str, detail: str) -> None:
        super().__init__(detail)
        self.cause = cause


def backup_store(store_path: Path, out: Path) -> int:
    """Copy the store at `store_path` to `out` consistently; return the copy's size in bytes."""
    if not store_path.exists():
        raise BackupError("no_store", f"no store at {store_path}")
    if out.exists():
        raise BackupError("exists", f"{out} exists; the backup never overwrites a file")
    if not out.parent.is_dir():
        raise BackupError("no_folder", f"no folder {out.parent}")
    partial = out.with_name(f".{out.name}.partial")
    partial.unlink(missing_ok=True)
    try:
        source = sqlite3.connect(f"file:{store_path}?mode=ro", uri=True)
        try:
            source.execute(f"PRAGMA busy_timeout = {BACKUP_BUSY_TIMEOUT_MS}")
            source.execute("VACUUM INTO ?", (str(partial),))
        finally:
            source.close()
        _check(partial)
        # Not os.replace: a PATH created meanwhile is kept, and the link fails instead.
        os.link(partial, out)
    except sqlite3.Error as exc:
        raise BackupError("sqlite", f"backup failed: {exc}") from None
    except OSError as exc:
        raise BackupError("io", f"backup failed: {exc.strerror or exc}") from None
    finally:
        partial.unlink(missing_ok=True)
    return out.stat().st_size


def _check(copy: Path) -> None:
    conn = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
    try:
        answer = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    finally:
        conn.close()
    if answer != ["ok"]:
        raise BackupError("integrity", f"the copy fails integrity_check: {'; '.join(answer)}")


def run_backup_command(config_path: Path, out: Path) -> int:
    """The `gateway backup` command; returns its exit status (0, 1 failed, 2 config error)."""
    try:
        settings = load_store_settings(config_path)
    except ConfigError as exc:
        print(exc.detail, file=sys.stderr)
        return EXIT_USAGE
    started = time.monotonic()
    try:
        size = backup_store(Path(settings.path), out)
    except BackupError as exc:
        print(exc.detail, file=sys.stderr)
        return EXIT_FAILED
    took = time.monotonic() - started
    print(f"backed up {settings.path} to {out} ({size} bytes, {took:.1f} s, integrity ok)")
    return EXIT_OK
