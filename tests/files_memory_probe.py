"""Takes one long CSV file through a real store and reports the process tree's RSS as JSON.

Run as a script by tests/test_csv_memory.py, in a fresh interpreter, so no other test's
objects count: `python files_memory_probe.py FOLDER LINES`. Prints {"baseline", "peak",
"documents"}: bytes of RSS of this process and its children (the store's writer process)
after a warm-up file, the most sampled while the long file was taken, and what it committed.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).parent))

from files_support import HEADER, Channel, row

from gateway.store import Store

PAGE = os.sysconf("SC_PAGE_SIZE")


def tree_rss(pid: int) -> int:
    """RSS in bytes of `pid` and its descendants."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            with open(f"/proc/{current}/statm") as statm:
                total += int(statm.read().split()[1]) * PAGE
            with open(f"/proc/{current}/task/{current}/children") as children:
                pending.extend(int(c) for c in children.read().split())
        except OSError:
            continue
    return total


class Sampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.02):
            self.peak = max(self.peak, tree_rss(os.getpid()))


async def main(folder: Path, lines: int) -> dict[str, int]:
    async with Store(folder / "gateway.db", synchronous="NORMAL") as store:
        channel = Channel(folder, store)
        channel.drop("stock_0.csv", HEADER + row() * 1000)
        await channel.settle()  # warm-up: imports, statement caches, the first pages
        channel.drop("stock_1.csv", HEADER + row() * lines)
        baseline = tree_rss(os.getpid())
        sampler = Sampler()
        sampler.start()
        report = await channel.settle()
        sampler.stop.set()
        sampler.join()
    [(_, result)] = report.taken
    return {"baseline": baseline, "peak": sampler.peak, "documents": result.documents}


if __name__ == "__main__":
    print(json.dumps(anyio.run(main, Path(sys.argv[1]), int(sys.argv[2]))))
