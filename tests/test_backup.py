"""`gateway backup`: a consistent copy of the store taken while the gateway's writer commits."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import pytest
from store_samples import acceptance, select

from gateway.backup import backup_store
from gateway.cli import main
from gateway.store import Store

# A config whose partner secret and broker URL are env references nobody set: a backup reads
# only [store].
CONFIG = """\
[store]
path = "{store}"

[amqp]
url = {{ env = "UNSET_AMQP_URL" }}

[[partners]]
id = "acme"
name = "Acme"
secrets = [{{ env = "UNSET_ACME_SECRET" }}]
"""
COMMITTED_BEFORE = 200


def message_ids(path: Path) -> set[str]:
    return {row[0] for row in select(path, "SELECT message_id FROM outbox")}


@pytest.mark.anyio
async def test_a_copy_taken_under_writes_holds_every_row_committed_before_it_and_checks_out(
    tmp_path: Path,
) -> None:
    store_path, copy = tmp_path / "gateway.db", tmp_path / "backup.db"
    async with Store(store_path) as store:
        for n in range(COMMITTED_BEFORE):
            await store.accept(acceptance(f"before-{n}"))
        before = message_ids(store_path)
        written_during = 0

        async def keep_writing() -> None:
            nonlocal written_during
            while True:
                await store.accept(acceptance(f"during-{written_during}", records=5))
                written_during += 1

        async with anyio.create_task_group() as tg:
            tg.start_soon(keep_writing)
            # Writes are under way before the copy starts.
            with anyio.fail_after(30):
                while written_during < 5:
                    await anyio.sleep(0.01)
            size = await anyio.to_thread.run_sync(backup_store, store_path, copy)
            tg.cancel_scope.cancel()

    copied = message_ids(copy)
    assert size == copy.stat().st_size
    assert select(copy, "PRAGMA integrity_check") == [("ok",)]
    assert len(before) == COMMITTED_BEFORE
    assert before <= copied
    assert copied <= message_ids(store_path)
    assert written_during > 5  # the writer kept committing around the copy


def test_the_cli_copies_without_any_secret_present(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_path = tmp_path / "gateway.db"
    config = tmp_path / "gateway.toml"
    config.write_text(CONFIG.format(store=store_path))

    async def seed() -> None:
        async with Store(store_path) as store:
            await store.accept(acceptance("one"))

    anyio.run(seed)
    code = main(["backup", "--config", str(config), "--out", str(tmp_path / "copy.db")], {})

    assert code == 0
    assert "integrity ok" in capsys.readouterr().out
    assert message_ids(tmp_path / "copy.db") == message_ids(store_path)


def test_an_existing_file_is_never_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_path = tmp_path / "gateway.db"
    sqlite3.connect(store_path).close()
    config = tmp_path / "gateway.toml"
    config.write_text(CONFIG.format(store=store_path))
    out = tmp_path / "copy.db"
    out.write_bytes(b"keep me")

    code = main(["backup", "--config", str(config), "--out", str(out)], {})

    assert code == 1
    assert "never overwrites" in capsys.readouterr().err
    assert out.read_bytes() == b"keep me"


@pytest.mark.parametrize(
    ("store", "out", "message"),
    [("missing.db", "copy.db", "no store at"), ("gateway.db", "nofolder/copy.db", "no folder")],
    ids=["no-store", "no-folder"],
)
def test_a_backup_that_cannot_be_taken_exits_1_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], store: str, out: str, message: str
) -> None:
    sqlite3.connect(tmp_path / "gateway.db").close()
    config = tmp_path / "gateway.toml"
    config.write_text(CONFIG.format(store=tmp_path / store))

    code = main(["backup", "--config", str(config), "--out", str(tmp_path / out)], {})

    assert code == 1
    assert message in capsys.readouterr().err
