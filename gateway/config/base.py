"""The base every configuration Struct shares, its rules, and the constrained types sections reuse.

A table's rules are the checks no field type can make alone (a field against another, a table
against the rest of the file). `Base.problems` yields them; `__post_init__` raises them all at
once as `Invalid`, so a config built in Python is held to the same rules as one loaded from
TOML. The loader also runs them on a table that did not build (`tables.Draft`): a rule that
reads a field which failed raises `Unknown`, and `with known():` skips that rule alone, so one
run reports every problem without inventing a second one from the first.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Annotated, ClassVar

import msgspec

__all__ = [
    "MAX_BODY_BYTES_CEILING",
    "MIB",
    "Base",
    "BodyBytes",
    "Count",
    "Host",
    "Invalid",
    "Name",
    "Port",
    "Problem",
    "Seconds",
    "Unknown",
    "join_host_port",
    "known",
]

MIB = 1024 * 1024
# No partner document is anywhere near this; a bigger body is a mistake or an attack.
MAX_BODY_BYTES_CEILING = 64 * MIB

# A field path relative to the table ("port", "rate_limit.burst", "secrets[0]"; "" for the
# table itself) and what is wrong there.
Problem = tuple[str, str]


class Unknown(Exception):
    """A rule read a field whose value is unknown: it did not convert, or was missing."""


class Invalid(ValueError):
    """Every rule a table breaks, as (field, message) pairs."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{f}: {m}" if f else m for f, m in self.problems))


def known() -> contextlib.AbstractContextManager[None]:
    """Skip the rule in this block if it reads a field whose value is unknown."""
    return contextlib.suppress(Unknown)


class Base(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Immutable, keyword-only, and strict: a misspelt key is an error, not a silent default.

    Subclasses repeat `frozen=True`: mypy's dataclass_transform does not inherit it (msgspec#657).
    """

    # Keys this table used to have, each with what to write instead: a file written for an
    # older gateway is told why its key is refused, not only that it is unknown.
    RETIRED: ClassVar[Mapping[str, str]] = {}

    def __post_init__(self) -> None:
        problems = list(self.problems())
        if problems:
            raise Invalid(problems)

    def problems(self) -> Iterator[Problem]:
        """Yield what is wrong across this table's fields (paths relative to the table)."""
        return iter(())


def join_host_port(host: str, port: int) -> str:
    """Return host:port, bracketing an IPv6 literal."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


Host = Annotated[str, msgspec.Meta(min_length=1, max_length=253)]
# 0 asks the OS for a free port (tests); anything else is a fixed listener.
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Seconds = Annotated[float, msgspec.Meta(gt=0)]
Count = Annotated[int, msgspec.Meta(ge=1)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
BodyBytes = Annotated[int, msgspec.Meta(ge=1024, le=MAX_BODY_BYTES_CEILING)]
