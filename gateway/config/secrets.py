"""Webhook signing secrets: the redacting `Secret` type and its resolution from TOML, env or file.

A secret is written inline (`"whsec_..."`), or by reference: `{ env = "ACME_SECRET" }` (looked up
in the `environ` mapping the composition root passes in) or `{ file = "secrets/acme" }` (relative
to the configuration file's folder, surrounding whitespace stripped). Every error message names
where the secret came from and what is wrong with it, never its value.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["MAX_KEY_BYTES", "MIN_KEY_BYTES", "WHSEC_PREFIX", "Secret", "secret_hook"]

WHSEC_PREFIX = "whsec_"
# Standard Webhooks: secrets are 24 to 64 random bytes.
MIN_KEY_BYTES, MAX_KEY_BYTES = 24, 64
# A secret file is one line; anything longer is the wrong file, and is not read whole.
MAX_SECRET_FILE_BYTES = 4096
NOT_A_SECRET = f"not a {WHSEC_PREFIX} secret (base64 of {MIN_KEY_BYTES}-{MAX_KEY_BYTES} bytes)"


class Secret:
    """A webhook signing secret whose value shows nowhere: repr, str, logs, errors or encoders.

    `key` is the decoded HMAC key, `reveal()` the `whsec_...` text for the few places that need
    it. msgspec cannot encode it (TypeError), so a config dumped by mistake fails loudly instead
    of leaking. Equality is by key, in constant time.
    """

    __slots__ = ("_key", "_source", "_value")

    def __init__(self, value: str, *, source: str = "inline") -> None:
        self._key = _decode_key(value)
        self._value = value
        self._source = source

    @classmethod
    def generate(cls, n_bytes: int = 32) -> Secret:
        """Return a fresh random secret (for tests and demos)."""
        raw = base64.b64encode(os.urandom(n_bytes)).decode("ascii")
        return cls(WHSEC_PREFIX + raw, source="generated")

    @property
    def key(self) -> bytes:
        """Return the decoded HMAC-SHA256 key."""
        return self._key

    @property
    def source(self) -> str:
        """Return where the secret came from: `inline`, `env:NAME` or `file:PATH`."""
        return self._source

    def reveal(self) -> str:
        """Return the secret's `whsec_...` text; for signing libraries, never for output."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{WHSEC_PREFIX}…', source={self._source!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._key, other._key)

    def __hash__(self) -> int:
        return hash(self._key)


def secret_hook(environ: Mapping[str, str], base_dir: Path) -> Callable[[type, Any], Any]:
    """Return a msgspec `dec_hook` that turns inline text or an env/file table into a Secret.

    Raised ValueErrors become msgspec ValidationErrors carrying the field path.
    """

    def hook(type_: type, obj: Any) -> Any:
        if type_ is not Secret:
            raise NotImplementedError
        if isinstance(obj, str):
            return Secret(obj)
        if not isinstance(obj, dict):
            raise TypeError(
                f'expected a {WHSEC_PREFIX} string, {{ env = "NAME" }} or {{ file = "PATH" }}'
            )
        if len(obj) != 1 or not obj.keys() <= {"env", "file"}:
            raise ValueError('expected exactly one of { env = "NAME" } or { file = "PATH" }')
        ((kind, where),) = obj.items()
        if not isinstance(where, str) or not where:
            raise ValueError(f"{kind}: expected a non-empty string")
        return _from_env(where, environ) if kind == "env" else _from_file(where, base_dir)

    return hook


def _from_env(name: str, environ: Mapping[str, str]) -> Secret:
    value = environ.get(name)
    if value is None:
        raise ValueError(f"environment variable {name} is not set")
    if not value.strip():
        raise ValueError(f"environment variable {name} is empty")
    try:
        return Secret(value.strip(), source=f"env:{name}")
    except ValueError:
        raise ValueError(f"environment variable {name}: {NOT_A_SECRET}") from None


def _from_file(name: str, base_dir: Path) -> Secret:
    try:
        with (base_dir / name).open("rb") as f:
            raw = f.read(MAX_SECRET_FILE_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"cannot read secret file {name}: {exc.strerror}") from None
    if len(raw) > MAX_SECRET_FILE_BYTES:
        raise ValueError(f"secret file {name}: longer than {MAX_SECRET_FILE_BYTES} bytes")
    try:
        return Secret(raw.decode("utf-8").strip(), source=f"file:{name}")
    except (UnicodeDecodeError, ValueError):
        raise ValueError(f"secret file {name}: {NOT_A_SECRET}") from None


def _decode_key(value: str) -> bytes:
    if not value.startswith(WHSEC_PREFIX):
        raise ValueError(NOT_A_SECRET)
    try:
        key = base64.b64decode(value.removeprefix(WHSEC_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        # `from None`: the decoder's own message must not travel with the value.
        raise ValueError(NOT_A_SECRET) from None
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise ValueError(NOT_A_SECRET)
    return key
