"""The store under faults: a full disk and a killed process never leave half a batch."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest
from store_samples import acceptance, select, write_lock

from canonical.errors import ConfigError, GatewayError, StoreUnavailable
from gateway.store import Acceptance, Accepted, Store
from gateway.store.process import WriterProcess
from gateway.store.schema import SCHEMA_VERSION

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


def _state(pid: int) -> str:
    """The process state letter from /proc (Z: exited, waiting for its parent to reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return "gone"


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
        writer_pid = store.writer_pid
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
        # A refused batch is an answer like any other: the writer process (and the relay it
        # may run) goes on.
        assert store.writer_pid == writer_pid

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
        print(f"writer {store.writer_pid}", flush=True)

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
        writer_pid = int(child.stdout.readline().split()[1])
        for line in child.stdout:
            answered.append(line.strip())
            if len(answered) >= 2000:
                break
    finally:
        child.kill()  # SIGKILL, most likely in the middle of a batch
        rest, errors = child.communicate()
    answered += rest.split()
    assert len(answered) >= 2000, errors
    # The writer process ends its transaction and exits when its parent's pipe closes.
    deadline = time.monotonic() + 10
    while _state(writer_pid) not in ("Z", "gone"):
        assert time.monotonic() < deadline, "the writer process outlived its parent"
        time.sleep(0.05)

    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        kept = {key for (key,) in conn.execute("SELECT idempotency_key FROM inbox")}
        rows = dict(conn.execute("SELECT idempotency_key, count(*) FROM outbox GROUP BY 1"))
    assert set(answered) <= kept
    # Every kept acceptance has both its rows, and no row exists without its acceptance.
    assert rows == dict.fromkeys(kept, 2)


@pytest.mark.anyio
async def test_killed_writer_process_costs_its_batch_an_answer_never_a_row(tmp_path: Path) -> None:
    # SIGKILL the writer process five times under load. Requests of a batch it held are
    # answered 503 (that batch may or may not have committed); nothing answered 202 is lost,
    # no acceptance is kept in half, and the next batch starts a new writer process.
    db_path = tmp_path / "gateway.db"
    results: dict[str, Any] = {}
    killed: set[int] = set()
    done = anyio.Event()
    async with Store(db_path) as store:

        async def load(worker: int) -> None:
            n = 0
            while not done.is_set():
                key = f"key-{worker}-{n}"
                n += 1
                try:
                    results[key] = await store.accept(acceptance(key, records=2))
                    accepted_count[0] += 1
                except GatewayError as exc:
                    results[key] = exc

        # Each writer process is killed once it has taken its share of the load: the test
        # is about kills under load, however fast this machine commits today.
        accepted_count = [0]
        async with anyio.create_task_group() as tg:
            for worker in range(16):
                tg.start_soon(load, worker)
            with anyio.fail_after(60):
                while len(killed) < 5:
                    await anyio.sleep(0.05)
                    pid = store.writer_pid
                    if pid is not None and pid not in killed and accepted_count[0] >= 200:
                        os.kill(pid, signal.SIGKILL)
                        killed.add(pid)
                        accepted_count[0] = 0
                await anyio.sleep(0.2)
            done.set()
        after = await store.accept(acceptance("after-the-kills"))

    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        kept = {key for (key,) in conn.execute("SELECT idempotency_key FROM inbox")}
        rows = dict(conn.execute("SELECT idempotency_key, count(*) FROM outbox GROUP BY 1"))
    accepted = {k for k, r in results.items() if isinstance(r, Accepted)}
    refused = {k: r for k, r in results.items() if not isinstance(r, Accepted)}
    # Kills that land between batches cost nothing (the next batch goes to a new child), so
    # how many requests were refused depends on timing; what was refused is 503 only.
    assert all(isinstance(r, StoreUnavailable) for r in refused.values()), refused
    assert len(accepted) >= 5 * 200
    assert accepted <= kept
    assert rows == dict.fromkeys(kept - {"after-the-kills"}, 2) | {"after-the-kills": 1}
    assert not after.replayed


def _kill_writer(store: Store) -> None:
    pid = store.writer_pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _state(pid) not in ("Z", "gone"):
        assert time.monotonic() < deadline
        time.sleep(0.01)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", [("asyncio", {"use_uvloop": True})])
async def test_writer_killed_while_idle_costs_no_request(tmp_path: Path) -> None:
    # The child never took the next batch, so it goes to a new child: no 503 at all.
    async with Store(tmp_path / "gateway.db") as store:
        await store.accept(acceptance("key-1"))
        first = store.writer_pid
        _kill_writer(store)
        second = await store.accept(acceptance("key-2"))
        replay = await store.accept(acceptance("key-1"))

    assert not second.replayed
    assert replay.replayed
    assert store.writer_pid is None  # closed with the store
    assert first is not None


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", [("asyncio", {"use_uvloop": True})])
async def test_writer_killed_before_its_first_request_costs_no_request(tmp_path: Path) -> None:
    # A fresh child that died idle has not taken anything either: no pause before the next.
    async with Store(tmp_path / "gateway.db") as store:
        _kill_writer(store)
        accepted = await store.accept(acceptance("key-1"))
        _kill_writer(store)
        again = await store.accept(acceptance("key-2"))

    assert not accepted.replayed
    assert not again.replayed


@pytest.mark.anyio
async def test_a_request_the_writer_cannot_encode_fails_alone(tmp_path: Path) -> None:
    # A bug upstream (a value of the wrong type) costs its own request, not its batch.
    good = acceptance("key-good")
    bad_type = msgspec.structs.replace(acceptance("key-bad"), response_status="202")
    unencodable = msgspec.structs.replace(acceptance("key-worse"), response_body=Path("/x"))
    too_big = msgspec.structs.replace(acceptance("key-huge"), response_status=2**70)
    results: dict[str, Any] = {}
    async with Store(tmp_path / "gateway.db") as store:
        pid = store.writer_pid

        async def one(sample: Acceptance) -> None:
            try:
                results[sample.idempotency_key] = await store.accept(sample)
            except GatewayError as exc:
                results[sample.idempotency_key] = exc

        async with anyio.create_task_group() as tg:
            for sample in (bad_type, good, unencodable, too_big):
                tg.start_soon(one, sample)
        with pytest.raises(GatewayError, match="refused the write"):
            await store._write(lambda conn, now: None)  # does not pickle
        after = await store.accept(acceptance("key-after"))
        assert store.writer_pid == pid  # the same child all along

    assert isinstance(results["key-good"], Accepted)
    assert type(results["key-bad"]) is GatewayError
    assert type(results["key-worse"]) is GatewayError
    assert type(results["key-huge"]) is GatewayError
    assert not after.replayed
    kept = select(tmp_path / "gateway.db", "SELECT idempotency_key FROM inbox ORDER BY rowid")
    assert kept == [("key-good",), ("key-after",)]


@pytest.mark.anyio
async def test_a_writer_that_cannot_start_answers_503_and_is_retried_later(
    tmp_path: Path,
) -> None:
    async with Store(tmp_path / "gateway.db") as store:
        await store.accept(acceptance("key-1"))
        handle = store._writer_process
        assert handle is not None
        argv = handle._argv
        handle._argv = (sys.executable, "-c", "import sys; sys.exit(3)")
        _kill_writer(store)
        with pytest.raises(StoreUnavailable, match="could not start"):
            await store.accept(acceptance("key-2"))
        # Paced: the next batch does not try at once.
        with pytest.raises(StoreUnavailable, match="restarting"):
            await store.accept(acceptance("key-2"))
        handle._argv = argv
        await anyio.sleep(1.1)
        accepted = await store.accept(acceptance("key-2"))

    assert not accepted.replayed


@pytest.mark.anyio
async def test_a_commit_cancelled_mid_exchange_leaves_no_answer_for_the_next(
    tmp_path: Path,
) -> None:
    # The child has taken A and waits for the write lock when A's caller is cancelled. The
    # child is killed, so its late answer cannot be read as the answer to B.
    db_path = tmp_path / "gateway.db"
    writer = WriterProcess(
        str(db_path), synchronous="FULL", busy_timeout_ms=60_000, journal_size_limit=1 << 20
    )
    await writer.start()
    try:
        with write_lock(db_path) as lock:
            async with anyio.create_task_group() as tg:
                tg.start_soon(writer.commit, [acceptance("A", records=2)], [], 1.0)
                await anyio.sleep(0.5)
                tg.cancel_scope.cancel()
            lock.execute("ROLLBACK")
        answers, _ = await writer.commit([acceptance("B")], [], 2.0)
    finally:
        await writer.close()

    assert isinstance(answers[0], Accepted)
    assert answers[0].seqs == (1,)  # A's answer would be (1, 2)
    assert not answers[0].replayed
    kept = select(db_path, "SELECT idempotency_key FROM inbox")
    assert kept == [("B",)]


@pytest.mark.anyio
async def test_a_writer_from_other_code_than_its_gateway_refuses_to_start(tmp_path: Path) -> None:
    # An in-place upgrade: the restarted child's code knows another schema than the parent.
    writer = WriterProcess(
        str(tmp_path / "gateway.db"),
        synchronous="FULL",
        busy_timeout_ms=1000,
        journal_size_limit=1 << 20,
    )
    writer._argv = (*writer._argv[:-1], str(SCHEMA_VERSION - 1))
    with pytest.raises(ConfigError, match="upgraded while running"):
        await writer.start()
    assert writer.pid is None
    with contextlib.closing(sqlite3.connect(tmp_path / "gateway.db")) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (0,)  # nothing migrated


@pytest.mark.anyio
async def test_writer_killed_holding_a_batch_answers_it_503_and_keeps_none_of_it(
    tmp_path: Path,
) -> None:
    # The child has taken a batch and waits for SQLite's write lock when it is killed: that
    # batch is answered 503 and none of it is kept; later requests go to a new child.
    db_path = tmp_path / "gateway.db"
    results: dict[str, Any] = {}
    async with Store(db_path, busy_timeout_s=60) as store:

        async def one(key: str) -> None:
            try:
                results[key] = await store.accept(acceptance(key, records=2))
            except GatewayError as exc:
                results[key] = exc

        await store.accept(acceptance("first"))  # a child that dies on its first is paced
        with write_lock(db_path) as lock:
            async with anyio.create_task_group() as tg:
                for key in ("a", "b", "c"):
                    tg.start_soon(one, key)
                await anyio.sleep(0.5)  # the first batch is taken and waits for the lock
                _kill_writer(store)
                await anyio.sleep(0.5)  # the rest went to a new child, which waits too
                lock.execute("ROLLBACK")
        after = await store.accept(acceptance("after"))

    refused = {k for k, r in results.items() if isinstance(r, StoreUnavailable)}
    accepted = {k for k, r in results.items() if isinstance(r, Accepted)}
    assert refused
    assert refused | accepted == {"a", "b", "c"}
    kept = {key for (key,) in select(db_path, "SELECT idempotency_key FROM inbox")}
    assert kept == accepted | {"first", "after"}
    assert not after.replayed
