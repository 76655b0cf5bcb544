"""Build a Struct from one TOML table, collecting every field's error instead of the first.

msgspec stops at the first invalid field. A configuration check should list them all, so each
field is converted on its own (constraints, nested tables and the secret hook included) and the
Struct is built only when every field converted.
"""

from __future__ import annotations

import difflib
import re
import typing
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeVar

import msgspec

__all__ = ["Problem", "build", "did_you_mean", "join"]

S = TypeVar("S", bound=msgspec.Struct)
# A field path relative to the table ("port", "rate_limit.burst", "secrets[0]"; "" for the
# table itself) and what is wrong there.
Problem = tuple[str, str]
DecHook = Callable[[type, Any], Any]

_AT = re.compile(r"^(?P<message>.*) - at `\$(?P<path>[^`]*)`$", re.DOTALL)


def build(
    cls: type[S], table: object, dec_hook: DecHook | None = None
) -> tuple[S | None, list[Problem]]:
    """Return (the Struct, []) or (None, every problem found in the table)."""
    if not isinstance(table, dict):
        return None, [("", f"expected a table, got {_kind(table)}")]
    fields = msgspec.structs.fields(cls)
    names = [f.encode_name for f in fields]
    problems: list[Problem] = [
        (key, f"unknown key{did_you_mean(key, names)}") for key in table if key not in names
    ]
    values: dict[str, Any] = {}
    for field in fields:
        if field.encode_name not in table:
            if field.required:
                problems.append((field.encode_name, "missing required field"))
            continue
        value, field_problems = _convert(field.type, table[field.encode_name], dec_hook)
        problems += [(join(field.encode_name, path), message) for path, message in field_problems]
        values[field.name] = value
    if problems:
        return None, problems
    try:
        return cls(**values), []
    except (TypeError, ValueError) as exc:
        return None, [_attribute(str(exc), names)]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return " (did you mean 'x'?)" for a near miss, else ""."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def join(base: str, path: str) -> str:
    """Join a field path to a sub-path: ("secrets", "[0]") -> "secrets[0]"."""
    if not path:
        return base
    if not base:
        return path.removeprefix(".")
    return base + path if path.startswith(("[", ".")) else f"{base}.{path}"


def _convert(tp: Any, value: object, dec_hook: DecHook | None) -> tuple[Any, list[Problem]]:
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return build(tp, value, dec_hook)
    args = typing.get_args(tp)
    if typing.get_origin(tp) is dict and isinstance(value, dict) and _is_struct(args[1]):
        # A table of tables (`[workflow.partners.acme]`): each checked by name, like a section.
        return _convert_tables(args[0], args[1], value, dec_hook)
    # An optional table (`X | None`) that is present: check it field by field like any table.
    members = [t for t in typing.get_args(tp) if t is not type(None)]
    if len(members) == 1 and len(typing.get_args(tp)) == 2 and value is not None:
        return _convert(members[0], value, dec_hook)
    try:
        return msgspec.convert(value, tp, dec_hook=dec_hook), []
    except msgspec.ValidationError as exc:
        match = _AT.match(str(exc))
        path, message = (match["path"], match["message"]) if match else ("", str(exc))
        if typing.get_origin(tp) is Literal and not path:
            message += f" (expected one of {', '.join(map(repr, typing.get_args(tp)))})"
        return None, [(path, message)]


def _is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


def _convert_tables(
    key_type: Any, value_type: Any, tables: dict[Any, Any], dec_hook: DecHook | None
) -> tuple[Any, list[Problem]]:
    built: dict[Any, Any] = {}
    problems: list[Problem] = []
    for key, table in tables.items():
        name, key_problems = _convert(key_type, key, dec_hook)
        problems += [(str(key), f"not a valid name: {message}") for _, message in key_problems]
        entry, entry_problems = build(value_type, table, dec_hook)
        problems += [(join(str(key), path), message) for path, message in entry_problems]
        built[name] = entry
    return (None if problems else built), problems


def _attribute(message: str, names: list[str]) -> Problem:
    # A cross-field check in __post_init__ names its field first ("url: ..."); keep that as path.
    field, sep, rest = message.partition(": ")
    return (field, rest) if sep and field in names else ("", message)


def _kind(value: object) -> str:
    return {dict: "a table", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )
