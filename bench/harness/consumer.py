"""Timestamping consumer: records when each bench order arrives on the sink queue.

For every delivery it notes CLOCK_MONOTONIC and the sequence number found in the body (the PO
number `BPO-<seq>`, carried through by the gateway's envelope and by the peers' bodies alike),
and appends the pair to `--out` as two little-endian int64s, flushed every 100 ms, so the
harness can read what arrived so far at any time. Auto-ack: the probe must cost the broker and
the machine as little as possible. A body without a bench PO number is recorded with seq -1.

    python -m bench.harness.consumer --amqp-url amqp://... --queue bench.sink --out recv.bin

Runs until SIGTERM/SIGINT or `--max-seconds`.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from array import array
from collections.abc import Sequence
from pathlib import Path

import aiormq
import anyio
import numpy as np
from aiormq.abc import DeliveredMessage

from bench.harness.documents import PO_NUMBER_PATTERN

__all__ = ["main", "read_receipts"]

FLUSH_EVERY_S = 0.1
#: A probe has no business being slower than the broker: far more than it will ever need.
MAX_RUN_S = 4 * 3600.0


def read_receipts(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Return (seq, received_ns) arrays of what the consumer has written so far."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    pairs = np.frombuffer(raw[: len(raw) // 16 * 16], dtype="<i8").reshape(-1, 2)
    return pairs[:, 0].copy(), pairs[:, 1].copy()


async def consume(url: str, queue: str, out: Path, max_seconds: float) -> int:
    """Consume `queue`, appending to `out`, until cancelled, signalled or `max_seconds` pass."""
    pending = array("q")
    received = 0

    async def on_message(message: DeliveredMessage) -> None:
        now = time.monotonic_ns()
        found = PO_NUMBER_PATTERN.search(message.body)
        pending.append(int(found.group(1)) if found else -1)
        pending.append(now)

    def flush() -> None:
        nonlocal received
        if pending:
            with out.open("ab") as f:
                f.write(pending.tobytes())
            received += len(pending) // 2
            del pending[:]

    connection = await aiormq.connect(url)
    try:
        channel = await connection.channel()
        await channel.basic_consume(queue, on_message, no_ack=True)
        print("consuming", flush=True)
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with anyio.create_task_group() as tg:

                async def stop_on_signal() -> None:
                    async for _ in signals:
                        tg.cancel_scope.cancel()

                tg.start_soon(stop_on_signal)
                with anyio.move_on_after(max_seconds):
                    while True:
                        await anyio.sleep(FLUSH_EVERY_S)
                        flush()
                tg.cancel_scope.cancel()
    finally:
        flush()
        with anyio.CancelScope(shield=True):
            await connection.close()
    return received


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--amqp-url", required=True)
    parser.add_argument("--queue", default="bench.sink")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-seconds", type=float, default=MAX_RUN_S)
    args = parser.parse_args(argv)
    args.out.write_bytes(b"")
    received = anyio.run(
        consume,
        args.amqp_url,
        args.queue,
        args.out,
        args.max_seconds,
        backend_options={"use_uvloop": True},
    )
    print(f"received {received}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
