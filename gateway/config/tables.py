"""Build a Struct from one TOML table, collecting every problem instead of the first.

msgspec stops at the first invalid field. A configuration check should list them all, so each
field is converted on its own (constraints, nested tables, arrays of tables, tables of tables by
name and the secret hook included), then the table's rules run (`Base.problems`): on the Struct
when every field converted, else on a `Draft` of it, where the rules that read a failed field are
skipped.
"""

from __future__ import annotations

import difflib
import re
import typing
from collections.abc import Callable, Iterable
from typing import Any, Generic, Literal, NamedTuple, TypeVar

import msgspec

from gateway.config.base import Base, Invalid, Problem, Unknown

__all__ = ["Built", "DecHook", "Draft", "Problem", "build", "did_you_mean", "join"]

S = TypeVar("S", bound=Base)
DecHook = Callable[[type, Any], Any]

_AT = re.compile(r"^(?P<message>.*) - at `\$(?P<path>[^`]*)`$", re.DOTALL)


class Draft:
    """A table that did not build, standing in for its Struct while the rules run.

    Its fields that converted (or took their default) read as on the Struct, a nested table
    that did not build reads as its own Draft, and a field that failed raises `Unknown`.
    """

    __slots__ = ("_fields", "_of")

    def __init__(self, of: type[Base], fields: dict[str, Any]) -> None:
        self._of = of
        self._fields = fields

    def __getattr__(self, name: str) -> Any:
        try:
            return self._fields[name]
        except KeyError:
            raise Unknown(f"{self._of.__name__}.{name}") from None

    def __repr__(self) -> str:
        return f"Draft({self._of.__name__}, {sorted(self._fields)})"


class Built(NamedTuple, Generic[S]):
    """What `build` made of one table."""

    # The Struct, or None when the table has a problem.
    value: S | None
    # The Struct, or its Draft for the rules of an enclosing table (None: not even a table).
    draft: Any
    problems: list[Problem]


def build(cls: type[S], table: object, dec_hook: DecHook | None = None) -> Built[S]:
    """Return the Struct of `table`, or every problem found in it."""
    if not isinstance(table, dict):
        return Built(None, None, [("", f"expected a table, got {_kind(table)}")])
    fields = msgspec.structs.fields(cls)
    names = [f.encode_name for f in fields]
    problems = [_unknown_key(cls, key, names) for key in table if key not in names]
    values: dict[str, Any] = {}  # what converted, for the Struct
    seen: dict[str, Any] = {}  # what the rules may read: values, defaults and Drafts
    for field in fields:
        if field.encode_name not in table:
            if field.required:
                problems.append((field.encode_name, "missing required field"))
            elif field.default is not msgspec.NODEFAULT:
                seen[field.name] = field.default
            elif field.default_factory is not msgspec.NODEFAULT:
                seen[field.name] = field.default_factory()
            continue
        value, draft, found = _convert(field.type, table[field.encode_name], dec_hook)
        problems += [(join(field.encode_name, path), message) for path, message in found]
        if not found:
            values[field.name] = seen[field.name] = value
        elif draft is not None:
            seen[field.name] = draft
    if not problems:
        try:
            struct = cls(**values)
        except Invalid as exc:
            return Built(None, Draft(cls, seen), exc.problems)
        except (TypeError, ValueError) as exc:
            return Built(None, Draft(cls, seen), [_attribute(str(exc), names)])
        return Built(struct, struct, [])
    draft = Draft(cls, seen)
    return Built(None, draft, problems + list(cls.problems(draft)))  # type: ignore[arg-type]


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


def _convert(tp: Any, value: object, dec_hook: DecHook | None) -> tuple[Any, Any, list[Problem]]:
    """Return (value, its draft for the rules or None, problems) of one field."""
    if isinstance(tp, type) and issubclass(tp, Base):
        return build(tp, value, dec_hook)
    args = typing.get_args(tp)
    # An optional table (`X | None`) that is present: check it field by field like any table.
    members = [t for t in args if t is not type(None)]
    if len(members) == 1 and len(args) == 2 and value is not None:
        return _convert(members[0], value, dec_hook)
    # An array of tables (`[[erp.consumers]]`): each element on its own.
    if (
        typing.get_origin(tp) is tuple
        and len(args) == 2
        and args[1] is Ellipsis
        and isinstance(args[0], type)
        and issubclass(args[0], Base)
    ):
        return _convert_tables(args[0], value, dec_hook)
    # A table of tables by name (`[workflow.partners.acme]`): each entry on its own.
    if (
        typing.get_origin(tp) is dict
        and isinstance(value, dict)
        and isinstance(args[1], type)
        and issubclass(args[1], Base)
    ):
        return _convert_named_tables(args[0], args[1], value, dec_hook)
    try:
        return msgspec.convert(value, tp, dec_hook=dec_hook), None, []
    except msgspec.ValidationError as exc:
        match = _AT.match(str(exc))
        path, message = (match["path"], match["message"]) if match else ("", str(exc))
        if typing.get_origin(tp) is Literal and not path:
            message += f" (expected one of {', '.join(map(repr, typing.get_args(tp)))})"
        return None, None, [(path, message)]


def _convert_tables(
    cls: type[Base], value: object, dec_hook: DecHook | None
) -> tuple[Any, Any, list[Problem]]:
    if not isinstance(value, list):
        return None, None, [("", f"expected an array of tables, got {_kind(value)}")]
    built = [build(cls, table, dec_hook) for table in value]
    problems = [(f"[{i}]{_dot(path)}", m) for i, b in enumerate(built) for path, m in b.problems]
    # An element that is not even a table reads as a Draft with no fields.
    drafts = tuple(b.draft if b.draft is not None else Draft(cls, {}) for b in built)
    return tuple(b.value for b in built), drafts, problems


def _convert_named_tables(
    key_type: Any, cls: type[Base], tables: dict[Any, Any], dec_hook: DecHook | None
) -> tuple[Any, Any, list[Problem]]:
    built: dict[Any, Any] = {}
    problems: list[Problem] = []
    for key, table in tables.items():
        name, _, key_problems = _convert(key_type, key, dec_hook)
        problems += [(str(key), f"not a valid name: {message}") for _, message in key_problems]
        entry = build(cls, table, dec_hook)
        problems += [(join(str(key), path), message) for path, message in entry.problems]
        built[name] = entry.value
    # A rule reading a table with a problem skips (no draft): its entries are not all known.
    return (None, None, problems) if problems else (built, built, [])


def _dot(path: str) -> str:
    return path if not path or path.startswith("[") else f".{path}"


def _unknown_key(cls: type[Base], key: str, names: list[str]) -> Problem:
    retired = cls.RETIRED.get(key)
    return (key, f"removed: {retired}" if retired else f"unknown key{did_you_mean(key, names)}")


def _attribute(message: str, names: list[str]) -> Problem:
    # A check in __post_init__ names its field first ("url: ..."); keep that as path.
    field, sep, rest = message.partition(": ")
    return (field, rest) if sep and field in names else ("", message)


def _kind(value: object) -> str:
    return {dict: "a table", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )
