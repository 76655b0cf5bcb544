"""Keys repeated within one JSON object: proved absent cheaply, named by path when present.

msgspec, like most JSON parsers, keeps the last of a repeated key and says nothing, so a body
could mean one thing to the partner's systems and another to ours. RFC 8259 leaves the meaning
of repeated names open; a document that has them is refused.

Proving there are none costs one untyped decode and one encode, both in C (about a quarter of
the typed decode of the same body; the typed decode runs the field patterns and rules):
re-encoding the untyped value writes each key of each object once and every string as it was
read, so a body without repeats has exactly as many colons as its re-encoding, and a repeat
drops at least its own colon. Only an escaped colon (`\\u003a`), written plainly by the
encoder, could make up for a dropped one: a body that holds a `\\u003` escape, and a body whose
counts differ, is parsed again by the standard library, which hands every object's pairs over
in order, to name each repeated key.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from canonical.errors import FieldError

__all__ = ["repeated_keys"]

_DECODER = msgspec.json.Decoder()
_ENCODER = msgspec.json.Encoder()
_UNPARSED: Any = object()  # `repeated_keys` decodes the body itself
_REPEATS = object()  # marks, inside a parsed object, the keys it repeated; never a JSON key


def repeated_keys(body: bytes, *, parsed: Any = _UNPARSED) -> list[FieldError]:
    """Return one error per key repeated within an object of the JSON `body`; usually none.

    `body` is expected to be JSON msgspec has read; anything else is left to the decoder's own
    errors, and answered with none here. `parsed` is `body` already decoded untyped by msgspec,
    if the caller has it: the common case then costs an encode and two counts.
    """
    if b"\\u003" not in body:
        try:
            if parsed is _UNPARSED:
                parsed = _DECODER.decode(body)
            if body.count(b":") == _ENCODER.encode(parsed).count(b":"):
                return []
        except (msgspec.MsgspecError, RecursionError, ValueError):
            pass  # numbers past a double or an int64, say: the slow path below decides
    return _named(body)


def _named(body: bytes) -> list[FieldError]:
    try:
        # Numbers are not needed, only keys: skip converting them (and int's digit limit).
        parsed = json.loads(
            body,
            object_pairs_hook=_object,
            parse_int=_skip,
            parse_float=_skip,
            parse_constant=_skip,
            strict=False,
        )
    except (ValueError, RecursionError):
        return []
    errors: list[FieldError] = []
    _collect(parsed, "$", errors)
    return errors


def _skip(_: str) -> None:
    return None


def _object(pairs: list[tuple[str, Any]]) -> dict[Any, Any]:
    value: dict[Any, Any] = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        repeated = []
        for key, _ in pairs:
            if key in seen:
                repeated.append(key)
            seen.add(key)
        value[_REPEATS] = repeated
    return value


def _collect(value: Any, path: str, errors: list[FieldError]) -> None:
    if isinstance(value, dict):
        for key in dict.fromkeys(value.get(_REPEATS, ())):
            errors.append(FieldError(f"{path}.{key}", f"key `{key}` appears more than once"))
        for key, item in value.items():
            if key is not _REPEATS:
                _collect(item, f"{path}.{key}", errors)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _collect(item, f"{path}[{i}]", errors)
