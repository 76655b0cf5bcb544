"""A long CSV feed is read, staged and committed in bounded memory: the process tree (the
gateway's process and the store's writer process) grows by less than 50 MB for 100k lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROBE = Path(__file__).parent / "files_memory_probe.py"
LINES = 100_000
MAX_GROWTH = 50 * 1024 * 1024


def test_a_100k_line_csv_grows_the_process_tree_by_under_50_mb(tmp_path: Path) -> None:
    root = Path(__file__).parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, str(PROBE), str(tmp_path), str(LINES)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    measured = json.loads(done.stdout.strip().splitlines()[-1])

    assert measured["documents"] == LINES
    growth = measured["peak"] - measured["baseline"]
    assert growth < MAX_GROWTH, f"grew {growth / 2**20:.1f} MiB"
