"""Values that must never show, and where they come from: TOML, an env var or a file.

`Secret` is a webhook signing secret, `AmqpUrl` a broker URL (its password), `Password` and
`PrivateKey` an SFTP login's password or OpenSSH private key. Each is written
inline (`"whsec_..."`, `"amqp://..."`), or by reference: `{ env = "ACME_SECRET" }` (looked up in
the `environ` mapping the composition root passes in) or `{ file = "secrets/acme" }` (relative
to the configuration file's folder, surrounding whitespace stripped). Every error message names
where the value came from and what is wrong with it, never the value.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

from gateway.config.base import join_host_port

__all__ = [
    "AMQP_URL_EXPECTED",
    "MAX_KEY_BYTES",
    "MIN_KEY_BYTES",
    "WHSEC_PREFIX",
    "AmqpUrl",
    "Password",
    "PrivateKey",
    "Secret",
    "secret_hook",
]

WHSEC_PREFIX = "whsec_"
# Standard Webhooks: secrets are 24 to 64 random bytes.
MIN_KEY_BYTES, MAX_KEY_BYTES = 24, 64
# A secret file is one line; anything longer is the wrong file, and is not read whole.
MAX_SECRET_FILE_BYTES = 4096
NOT_A_SECRET = f"not a {WHSEC_PREFIX} secret (base64 of {MIN_KEY_BYTES}-{MAX_KEY_BYTES} bytes)"
AMQP_URL_EXPECTED = "expected amqp://[user:password@]host[:port]/[vhost]"
_AMQP_PORTS = {"amqp": 5672, "amqps": 5671}


class Hidden:
    """A value that shows nowhere: repr, str, logs, errors or encoders; the base of each type here.

    `reveal()` is the text, for the client that uses it; `source` where it came from. msgspec
    cannot encode one (TypeError), so a config dumped by mistake fails loudly instead of
    leaking. Equality is by `_compared()`, in constant time, and only within one type: a
    password never equals a private key, even with the same text. Subclasses check the text
    in `__init__`.
    """

    __slots__ = ("_source", "_value")
    # What the TOML value must be, for the message when it is neither text nor a reference.
    WRITTEN_AS = "a string"

    def __init__(self, value: str, *, source: str = "inline") -> None:
        self._value = value
        self._source = source

    @property
    def source(self) -> str:
        """Return where the value came from: `inline`, `env:NAME` or `file:PATH`."""
        return self._source

    def reveal(self) -> str:
        """Return the text; for the client that uses it, never for output."""
        return self._value

    def __repr__(self) -> str:
        return f"{type(self).__name__}(…, source={self._source!r})"

    def __str__(self) -> str:
        return repr(self)

    def _compared(self) -> bytes:
        return self._value.encode()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Hidden) or type(other) is not type(self):
            return NotImplemented
        return hmac.compare_digest(self._compared(), other._compared())

    def __hash__(self) -> int:
        return hash(self._compared())


class Secret(Hidden):
    """A webhook signing secret whose value shows nowhere: repr, str, logs, errors or encoders.

    `key` is the decoded HMAC key, `reveal()` the `whsec_...` text for the few places that need
    it (signing libraries). Equality is by key.
    """

    __slots__ = ("_key",)
    WRITTEN_AS = f"a {WHSEC_PREFIX} string"

    def __init__(self, value: str, *, source: str = "inline") -> None:
        self._key = _decode_key(value)
        super().__init__(value, source=source)

    @classmethod
    def generate(cls, n_bytes: int = 32) -> Secret:
        """Return a fresh random secret (for tests and demos)."""
        raw = base64.b64encode(os.urandom(n_bytes)).decode("ascii")
        return cls(WHSEC_PREFIX + raw, source="generated")

    @property
    def key(self) -> bytes:
        """Return the decoded HMAC-SHA256 key."""
        return self._key

    def __repr__(self) -> str:
        return f"Secret('{WHSEC_PREFIX}…', source={self._source!r})"

    def _compared(self) -> bytes:
        return self._key


class AmqpUrl(Hidden):
    """A broker URL whose password shows nowhere: repr, str, logs, errors or encoders.

    `reveal()` is the URL for the AMQP client; `address` is host:port for messages. repr keeps
    the user, host and vhost (what an operator needs to tell brokers apart) and masks the
    password.
    """

    __slots__ = ("_parts",)
    WRITTEN_AS = "an amqp:// URL"

    def __init__(self, value: str, *, source: str = "inline") -> None:
        # The messages name the fault, never the URL: it may carry a password.
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError on a port that is not a number
        except ValueError:
            raise ValueError(AMQP_URL_EXPECTED) from None
        if parts.scheme not in _AMQP_PORTS or not parts.hostname:
            raise ValueError(AMQP_URL_EXPECTED)
        self._parts: SplitResult = parts
        super().__init__(value, source=source)

    @property
    def address(self) -> str:
        """Return the broker's host:port, without credentials."""
        parts = self._parts
        return join_host_port(parts.hostname or "", parts.port or _AMQP_PORTS[parts.scheme])

    def __repr__(self) -> str:
        parts = self._parts
        if parts.password is not None:
            parts = parts._replace(netloc=f"{parts.username}:***@{self.address}")
        return f"AmqpUrl({parts.geturl()!r}, source={self._source!r})"


class Password(Hidden):
    """A login password (an SFTP server's) that shows nowhere: repr, str, logs, errors or encoders.

    Any non-empty text; `reveal()` gives it to the SSH client.
    """

    __slots__ = ()
    WRITTEN_AS = "a password string"

    def __init__(self, value: str, *, source: str = "inline") -> None:
        if not value:
            raise ValueError("empty password")
        super().__init__(value, source=source)


class PrivateKey(Password):
    """An unencrypted OpenSSH or PEM private key (an SFTP login's), shown nowhere.

    Only its shape is checked here (a `-----BEGIN ... PRIVATE KEY-----` block); the SSH client
    parses it and reports a key it cannot read when it connects. Usually `{ file = "path" }`.
    """

    __slots__ = ()
    WRITTEN_AS = "an OpenSSH private key"

    def __init__(self, value: str, *, source: str = "inline") -> None:
        text = value.strip()
        if not (text.startswith("-----BEGIN ") and "PRIVATE KEY-----" in text.splitlines()[0]):
            raise ValueError("not a private key (expected -----BEGIN ... PRIVATE KEY-----)")
        if "ENCRYPTED" in text.splitlines()[0] or "Proc-Type: 4,ENCRYPTED" in text:
            raise ValueError("an encrypted private key; give the key without a passphrase")
        super().__init__(text + "\n", source=source)


# The types a TOML value may give inline or by reference; each takes (text, source=...).
SECRET_TYPES: tuple[type[Hidden], ...] = (
    Secret,
    AmqpUrl,
    Password,
    PrivateKey,
)


def secret_hook(
    environ: Mapping[str, str], base_dir: Path, *, resolve: bool = True
) -> Callable[[type, Any], Any]:
    """Return a msgspec `dec_hook` that turns inline text or an env/file table into a Secret
    or an AmqpUrl, whichever the field is.

    Raised ValueErrors become msgspec ValidationErrors carrying the field path. With `resolve`
    false a well-formed reference is not looked up: it becomes a random stand-in of its type
    (`stand_in`), for operator commands that read the store and never use a secret.
    """

    def hook(type_: type, obj: Any) -> Any:
        if type_ not in SECRET_TYPES:
            raise NotImplementedError
        if isinstance(obj, str):
            return type_(obj)
        written_as = getattr(type_, "WRITTEN_AS", "a string")
        if not isinstance(obj, dict):
            raise TypeError(f'expected {written_as}, {{ env = "NAME" }} or {{ file = "PATH" }}')
        if len(obj) != 1 or not obj.keys() <= {"env", "file"}:
            raise ValueError('expected exactly one of { env = "NAME" } or { file = "PATH" }')
        ((kind, where),) = obj.items()
        if not isinstance(where, str) or not where:
            raise ValueError(f"{kind}: expected a non-empty string")
        if not resolve:
            return type_(stand_in(type_), source=f"unresolved:{kind}:{where}")
        if kind == "env":
            text, named = _from_env(where, environ), f"environment variable {where}"
        else:
            text, named = _from_file(where, base_dir), f"secret file {where}"
        try:
            return type_(text, source=f"{kind}:{where}")
        except ValueError as exc:
            # The type's own message never holds the value; `from None` drops its context.
            raise ValueError(f"{named}: {exc}") from None

    return hook


def stand_in(type_: type) -> str:
    """Return a random value of a secret type, for a reference left unresolved on purpose.

    Random, so two stand-ins never look like a shared secret, and no peer knows one.
    """
    if type_ is Secret:
        return WHSEC_PREFIX + base64.b64encode(os.urandom(32)).decode("ascii")
    if type_ is AmqpUrl:
        return "amqp://unresolved@127.0.0.1/"
    if type_ is PrivateKey:
        import asyncssh  # only here: the stand-in must be a key the drop box's check reads

        key = asyncssh.generate_private_key("ssh-ed25519")
        return bytes(key.export_private_key()).decode("ascii")
    return base64.b64encode(os.urandom(24)).decode("ascii")


def _from_env(name: str, environ: Mapping[str, str]) -> str:
    value = environ.get(name)
    if value is None:
        raise ValueError(f"environment variable {name} is not set")
    if not value.strip():
        raise ValueError(f"environment variable {name} is empty")
    return value.strip()


def _from_file(name: str, base_dir: Path) -> str:
    try:
        with (base_dir / name).open("rb") as f:
            raw = f.read(MAX_SECRET_FILE_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"cannot read secret file {name}: {exc.strerror}") from None
    if len(raw) > MAX_SECRET_FILE_BYTES:
        raise ValueError(f"secret file {name}: longer than {MAX_SECRET_FILE_BYTES} bytes")
    try:
        return raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ValueError(f"secret file {name}: not UTF-8") from None


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
