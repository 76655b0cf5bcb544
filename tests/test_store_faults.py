"""The store under faults: a full disk and a killed process never leave half a batch."""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from store_samples import acceptance, select

from canonical.errors import GatewayError, StoreUnavailable
from gateway.store import Accepted, Store

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


def fill_leaving(path: Path, spare: int) -> None:
    """Fill the file system holding `path` with `path`, then give `spare` bytes back."""
    chunk = b"\0" * 16384
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        while True:
            os.write(fd, chunk)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
    finally:
        os.close(fd)
    os.truncate(path, max(0, path.stat().st_size - spare))


async def accept_all(store: Store, keys: list[str]) -> dict[str, Any]:
    """Accept every key at once (one group commit, most likely); return key -> outcome."""
    results: dict[str, Any] = {}

    async def one(key: str) -> None:
        try:
            results[key] = await store.accept(acceptance(key, record_size=4096))
        except GatewayError as exc:
            results[key] = exc

    async with anyio.create_task_group() as tg:
        for key in keys:
            tg.start_soon(one, key)
    return results


@pytest.mark.anyio
async def test_disk_full_refuses_whole_batches_and_recovers_when_space_returns(
    small_disk: Path,
) -> None:
    db_path = small_disk / "gateway.db"
    filler = small_disk / "filler"
    accepted: list[str] = []
    refused: list[str] = []
    async with Store(db_path, retry_after_s=2) as store:
        fill_leaving(filler, spare=96 * 1024)
        for round_ in range(100):
            results = await accept_all(store, [f"key-{round_}-{n}" for n in range(4)])
            accepted += [k for k, r in results.items() if isinstance(r, Accepted)]
            refused += [k for k, r in results.items() if isinstance(r, StoreUnavailable)]
            assert len(accepted) + len(refused) == 4 * (round_ + 1), results
            if refused:
                break

        assert accepted, "the disk was full before anything could be accepted"
        assert refused, "the disk never filled up"
        # Still answering: reads, and replays (a transaction that writes nothing).
        backlog, _ = await store.outbox_backlog()
        replay = await store.accept(acceptance(accepted[0], record_size=4096))

        filler.unlink()
        # A refused key was not kept, so its retry is a first acceptance, not a replay.
        retried = await store.accept(acceptance(refused[0], record_size=4096))
        fresh = await store.accept(acceptance("after-the-disk-full", record_size=4096))
        failures = store.statistics().commit_failures

    assert backlog == len(accepted)
    assert replay.replayed
    assert not retried.replayed
    assert not fresh.replayed
    assert failures >= 1
    kept = {key for (key,) in select(db_path, "SELECT idempotency_key FROM inbox")}
    assert kept == {*accepted, refused[0], "after-the-disk-full"}
    rows = dict(select(db_path, "SELECT idempotency_key, count(*) FROM outbox GROUP BY 1"))
    assert rows == dict.fromkeys(kept, 1)


# A child process accepting as fast as it can, printing each key once its accept returned.
_CHILD = """
import sys

import anyio

from gateway.store import Acceptance, NewOutboxRow, Store


async def main(path: str) -> None:
    async with Store(path) as store:

        async def one(n: int) -> None:
            records = tuple(
                NewOutboxRow(
                    message_id=f"m-{n}-{i}", document_type="purchase_order", schema_version=1,
                    routing_key="purchase_order.acme", correlation_id=f"c-{n}",
                    causation_id=None, body=b"x" * 512,
                )
                for i in range(2)
            )
            await store.accept(Acceptance(
                partner_id="acme", idempotency_key=f"key-{n}", body_hash=b"h",
                response_status=202, response_body=b"{}", records=records,
            ))
            print(f"key-{n}", flush=True)

        n = 0
        while True:
            async with anyio.create_task_group() as tg:
                for _ in range(32):
                    tg.start_soon(one, n)
                    n += 1


anyio.run(main, sys.argv[1])
"""


def test_killed_process_keeps_every_answered_acceptance_and_no_half_batch(tmp_path: Path) -> None:
    db_path = tmp_path / "gateway.db"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(db_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    answered: list[str] = []
    try:
        assert child.stdout is not None
        for line in child.stdout:
            answered.append(line.strip())
            if len(answered) >= 2000:
                break
    finally:
        child.kill()  # SIGKILL, most likely in the middle of a batch
        rest, errors = child.communicate()
    answered += rest.split()
    assert len(answered) >= 2000, errors

    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        kept = {key for (key,) in conn.execute("SELECT idempotency_key FROM inbox")}
        rows = dict(conn.execute("SELECT idempotency_key, count(*) FROM outbox GROUP BY 1"))
    assert set(answered) <= kept
    # Every kept acceptance has both its rows, and no row exists without its acceptance.
    assert rows == dict.fromkeys(kept, 2)
