"""The folder manners every file transport keeps: names never read, names taken instead."""

from __future__ import annotations

import itertools
import re

import pytest

from protocols.sftp.names import is_listed_name, suffixed_names, temporary_name


@pytest.mark.parametrize(
    ("name", "listed"),
    [
        ("po-1.edi", True),
        ("stock.csv", True),
        ("no-extension", True),
        ("po-1.edi.tmp", False),
        ("po-1.edi.TMP", False),
        ("po-1.edi.part", False),
        (".hidden", False),
        (".", False),
        ("..", False),
        ("", False),
        ("a/b.csv", False),
    ],
)
def test_which_names_are_listed(name: str, listed: bool) -> None:
    assert is_listed_name(name) is listed


def test_taken_names_are_followed_by_numbered_ones() -> None:
    assert list(itertools.islice(suffixed_names("po-1.edi"), 3)) == [
        "po-1.edi",
        "po-1-1.edi",
        "po-1-2.edi",
    ]
    assert list(suffixed_names("README", limit=1)) == ["README", "README-1"]


def test_a_temporary_name_is_hidden_unique_and_never_listed() -> None:
    first, second = temporary_name("po-1.edi"), temporary_name("po-1.edi")

    assert first != second
    assert re.fullmatch(r"\.po-1\.edi\.[0-9a-f]{12}\.part", first)
    assert not is_listed_name(first)
