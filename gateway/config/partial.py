"""Read one section of the config file alone, for commands that need no secret and no partner.

Operator commands that only read the store (`dead-letters list|show`, `trace`, `backup`) take
`[store]` from here: the rest of the file is not converted, so an unset `{ env = ... }` secret
of some partner, or the broker URL, does not stop them. The section is the same `StoreSettings`
Struct `load_config` builds, with the same defaults and rules.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import msgspec

from canonical.errors import ConfigError, FieldError
from gateway.config.settings import StoreSettings

__all__ = ["load_store_settings"]


def load_store_settings(path: Path) -> StoreSettings:
    """Return the file's `[store]` (its defaults when absent); raise ConfigError if unreadable."""
    try:
        document = tomllib.loads(path.read_text("utf-8"))
        return msgspec.convert(document.get("store", {}), StoreSettings)
    except (OSError, UnicodeDecodeError) as exc:
        message = f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}"
    except tomllib.TOMLDecodeError as exc:
        message = f"{path}: {exc}"
    except msgspec.ValidationError as exc:
        message = f"{path}: [store]: {exc}"
    raise ConfigError(message, errors=[FieldError("$", message)])
