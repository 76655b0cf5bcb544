"""Run a gateway whose clock starts at a given unix time: `python clocked_gateway.py CONFIG START`.

For tests that SIGKILL the process and start it again later on the business calendar: the
clock runs at the real pace from START, so a restart with a later START finds the timers that
came due "meanwhile" overdue.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import anyio

from gateway.app import run_gateway
from gateway.config import load_config
from gateway.logs import configure_logging


def main(config_path: str, start: str) -> None:
    config = load_config(Path(config_path), {})
    configure_logging(config.log.level)
    offset = float(start) - time.time()
    anyio.run(
        lambda: run_gateway(config, clock=lambda: time.time() + offset),
        backend="asyncio",
        backend_options={"use_uvloop": True},
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
