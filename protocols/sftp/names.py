"""The folder manners every file transport shares: which names are never read, and the name a
file takes when its own is taken.

A partner writes a file under a temporary name and renames it when complete; a name ending in
`.tmp` or `.part`, or starting with a dot, is such a file (or a hidden one) and is never listed.
Nothing is ever overwritten: a move or a put into a folder where the name is taken tries
`stem-1.ext`, `stem-2.ext`, ... up to a bound (FIELD-NOTES "SFTP").
"""

from __future__ import annotations

import posixpath
import secrets
from collections.abc import Iterator

__all__ = [
    "MAX_NAME_SUFFIX",
    "TEMPORARY_SUFFIXES",
    "is_listed_name",
    "is_plain_name",
    "suffixed_names",
    "temporary_name",
]

TEMPORARY_SUFFIXES = (".tmp", ".part")
# Names a move or a put tries after the file's own; past this the folder needs a person.
MAX_NAME_SUFFIX = 999


def is_plain_name(name: str) -> bool:
    """True when `name` is one file name: not empty, no slash, not `.` or `..`, no NUL."""
    return bool(name) and "/" not in name and "\0" not in name and name not in (".", "..")


def is_listed_name(name: str) -> bool:
    """True when a file of this name may be taken: a plain name, not a dotfile, not temporary."""
    return (
        is_plain_name(name)
        and not name.startswith(".")
        and not name.lower().endswith(TEMPORARY_SUFFIXES)
    )


def suffixed_names(name: str, *, limit: int = MAX_NAME_SUFFIX) -> Iterator[str]:
    """Yield `name`, then `stem-1.ext` ... `stem-{limit}.ext`: the names to try, in order."""
    yield name
    stem, ext = posixpath.splitext(name)
    for n in range(1, limit + 1):
        yield f"{stem}-{n}{ext}"


def temporary_name(name: str) -> str:
    """Return a hidden, temporary, unique name to write `name` under before renaming it.

    A dotfile ending in `.part`: every poller that keeps these manners skips it while it grows.
    """
    return f".{name}.{secrets.token_hex(6)}.part"
