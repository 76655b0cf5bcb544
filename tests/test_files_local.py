"""`LocalFolderSource`: a partner's folders on this machine, with the `FileSource` promises."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from protocols.files import LocalFolderSource

pytestmark = pytest.mark.anyio


@pytest.fixture
def folder(tmp_path: Path) -> LocalFolderSource:
    return LocalFolderSource(tmp_path / "acme")


def put_incoming(folder: LocalFolderSource, name: str, body: bytes = b"x") -> Path:
    path = folder.folder("incoming") / name
    path.write_bytes(body)
    return path


async def test_listing_shows_plain_files_only_with_size_and_whole_second_mtime(
    folder: LocalFolderSource, tmp_path: Path
) -> None:
    path = put_incoming(folder, "orders.csv", b"12345")
    os.utime(path, (1_780_000_000.7, 1_780_000_000.7))
    for name in ("a.tmp", "b.part", ".hidden"):
        put_incoming(folder, name)
    (folder.folder("incoming") / "sub").mkdir()
    outside = tmp_path / "secret.csv"
    outside.write_text("not the partner's")
    (folder.folder("incoming") / "link.csv").symlink_to(outside)

    listing = await folder.list_incoming()

    assert [(f.name, f.size, f.mtime) for f in listing] == [("orders.csv", 5, 1_780_000_000)]


async def test_fetch_copies_and_refuses_past_max_bytes(
    folder: LocalFolderSource, tmp_path: Path
) -> None:
    put_incoming(folder, "big.csv", b"y" * 100)

    await folder.fetch("big.csv", tmp_path / "copy", max_bytes=100)
    with pytest.raises(ValueError, match="larger than 99 bytes"):
        await folder.fetch("big.csv", tmp_path / "copy2", max_bytes=99)

    assert (tmp_path / "copy").read_bytes() == b"y" * 100


async def test_fetch_does_not_follow_a_symlink_planted_after_the_listing(
    folder: LocalFolderSource, tmp_path: Path
) -> None:
    outside = tmp_path / "secret"
    outside.write_text("private")
    (folder.folder("incoming") / "orders.csv").symlink_to(outside)

    with pytest.raises(OSError, match="Too many levels of symbolic links"):  # O_NOFOLLOW
        await folder.fetch("orders.csv", tmp_path / "copy", max_bytes=1000)


@pytest.mark.parametrize("name", ["../escape.csv", "/etc/passwd", "", ".."])
async def test_names_with_a_path_in_them_are_refused(
    folder: LocalFolderSource, tmp_path: Path, name: str
) -> None:
    with pytest.raises(ValueError, match="not a plain file name"):
        await folder.fetch(name, tmp_path / "copy", max_bytes=10)


async def test_a_move_is_idempotent_and_never_overwrites(folder: LocalFolderSource) -> None:
    put_incoming(folder, "orders.csv", b"first")
    (folder.folder("archive") / "orders.csv").write_bytes(b"already archived")

    moved = await folder.move("orders.csv", "archive")
    again = await folder.move("orders.csv", "archive")

    assert (moved, again) == (True, False)
    assert (folder.folder("archive") / "orders.csv").read_bytes() == b"already archived"
    assert (folder.folder("archive") / "orders-1.csv").read_bytes() == b"first"


async def test_put_writes_complete_files_and_never_overwrites(folder: LocalFolderSource) -> None:
    first = await folder.put("po.x12", b"ISA*one")
    second = await folder.put("po.x12", b"ISA*two")

    outbound = folder.folder("outbound")
    assert (first, second) == ("po.x12", "po-1.x12")
    assert sorted(os.listdir(outbound)) == ["po-1.x12", "po.x12"]  # no temporary left
    assert (outbound / "po.x12").read_bytes() == b"ISA*one"
