"""A struct's repr with its secrets left out: what a log line, a traceback or a debugger shows.

msgspec's own repr prints every field, keys and tokens included; a struct that holds one
defines `__repr__` with `redacted_repr` and names the fields to hide.
"""

from __future__ import annotations

from collections.abc import Collection

import msgspec

__all__ = ["REDACTED", "redacted_repr"]

REDACTED = "<redacted>"


def redacted_repr(struct: msgspec.Struct, secrets: Collection[str]) -> str:
    """Return `Name(field=value, ...)` with each field named in `secrets` shown as REDACTED."""
    shown = ", ".join(
        f"{name}={REDACTED if name in secrets else repr(getattr(struct, name))}"
        for name in struct.__struct_fields__
    )
    return f"{type(struct).__name__}({shown})"
