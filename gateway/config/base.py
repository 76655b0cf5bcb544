"""The base every configuration Struct shares, and the constrained types the sections reuse."""

from __future__ import annotations

from typing import Annotated

import msgspec

__all__ = [
    "MAX_BODY_BYTES_CEILING",
    "MIB",
    "Base",
    "BodyBytes",
    "Count",
    "Host",
    "Name",
    "Port",
    "Seconds",
]

MIB = 1024 * 1024
# No partner document is anywhere near this; a bigger body is a mistake or an attack.
MAX_BODY_BYTES_CEILING = 64 * MIB


class Base(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Immutable, keyword-only, and strict: a misspelt key is an error, not a silent default.

    Subclasses repeat `frozen=True`: mypy's dataclass_transform does not inherit it (msgspec#657).
    """


Host = Annotated[str, msgspec.Meta(min_length=1, max_length=253)]
# 0 asks the OS for a free port (tests); anything else is a fixed listener.
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Seconds = Annotated[float, msgspec.Meta(gt=0)]
Count = Annotated[int, msgspec.Meta(ge=1)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
BodyBytes = Annotated[int, msgspec.Meta(ge=1024, le=MAX_BODY_BYTES_CEILING)]
