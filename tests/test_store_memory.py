"""What the store's writer keeps in memory once a batch of large rows is committed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gateway.config import MIB

# Run in an interpreter of its own, so its resident memory is the writer's alone.
_COMMIT_BATCHES = """
import sqlite3, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from store_samples import acceptance
from gateway.store import schema, writer

def rss() -> int:
    status = Path("/proc/self/status").read_text()
    return int(next(l for l in status.splitlines() if l.startswith("VmRSS:")).split()[1]) * 1024

conn = sqlite3.connect(sys.argv[1], isolation_level=None,
                       cached_statements=writer.STATEMENT_CACHE_SIZE)
schema.prepare_writer(conn, synchronous="NORMAL", busy_timeout_ms=1000, journal_size_limit=0)
before = rss()
for size in range(1, 33):
    batch = [acceptance(f"key-{size}-{n}", record_size=1 << 20) for n in range(size)]
    writer.commit_batch(conn, batch, [], 1.0)
    del batch
print(rss() - before)
"""


def test_committed_large_rows_are_not_kept_by_the_statement_cache(tmp_path: Path) -> None:
    # Batches of 1 to 32 acceptances with a 1 MiB outbox row each: 528 MiB went through the
    # writer. A cached INSERT keeps what it was last bound to, so one statement per row count
    # kept its last batch: the writer stayed 565 MiB larger, for as long as it ran.
    done = subprocess.run(
        [sys.executable, "-c", _COMMIT_BATCHES, str(tmp_path / "g.db"), str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )

    kept = int(done.stdout)
    assert kept < 48 * MIB, f"{kept / MIB:.0f} MiB kept"
