"""How the store's ledgers reach SQLite: the two callables `Store` hands each of them.

`Write` runs an operation inside the writer's group commit, `Read` a query on the read-only
connection; the ledgers take them as arguments, so none holds a connection of its own.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

import aiosqlite

__all__ = ["Read", "Write"]

T = TypeVar("T")


class Write(Protocol):
    """The store's group-commit write: run `operation` in the writer's transaction."""

    async def __call__(self, operation: Callable[[sqlite3.Connection, float], T], /) -> T: ...


class Read(Protocol):
    """The store's read: run `query` on the read-only connection."""

    async def __call__(self, query: Callable[[aiosqlite.Connection], Awaitable[T]], /) -> T: ...
