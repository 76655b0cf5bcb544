"""Every invalid field of a body, by JSON path: the slow path taken after a decode has failed.

msgspec stops at the first error. A partner fixing a rejected order wants them all, so this
walks the target Struct's type information (`msgspec.inspect`) over the body split into
`msgspec.Raw` pieces: Structs, arrays of Structs and unions of Structs are walked here; every
other field is decoded on its own by a `Decoder` for that field's type, so its message is
msgspec's own and numbers stay exact. A Struct whose fields all pass is then decoded whole, so
its `__post_init__` rules run, and an `InvalidField` they raise is placed at the field it names.

The walk meets the bodies the typed decode refused, so it must stand anything: every msgspec
error becomes a field error where it happened, and a body nested too deeply to read (msgspec
raises `RecursionError`, at a depth that depends on the caller's stack) is one error at "$".
"""

from __future__ import annotations

import contextlib
import functools
import re
from typing import Any

import msgspec
import msgspec.inspect as mi

from canonical.common import InvalidField
from canonical.errors import FieldError

__all__ = ["TOO_DEEP", "field_errors", "join_path", "split_message"]

TOO_DEEP = "JSON nested too deeply"

_RAW = msgspec.json.Decoder(msgspec.Raw)
_RAW_OBJECT = msgspec.json.Decoder(dict[str, msgspec.Raw])
_RAW_ARRAY = msgspec.json.Decoder(list[msgspec.Raw])
_TAG = msgspec.json.Decoder(str)
_AT = re.compile(r"^(?P<message>.*) - at `\$(?P<path>[^`]*)`$", re.DOTALL)
_SEQUENCES = (mi.ListType, mi.VarTupleType, mi.SetType, mi.FrozenSetType)


class _Enough(Exception):
    """Raised inside the walk once `limit` errors are collected."""


class _Errors:
    def __init__(self, limit: int) -> None:
        self.items: list[FieldError] = []
        self.limit = limit

    def add(self, path: str, message: str) -> None:
        self.items.append(FieldError(path, message))
        if len(self.items) >= self.limit:
            raise _Enough


def join_path(base: str, relative: str) -> str:
    """Join a JSON path and a relative one: ("$.lines[0]", "quantity") -> "$.lines[0].quantity"."""
    if not relative:
        return base
    return base + relative if relative[0] in ".[" else f"{base}.{relative}"


def split_message(exc: msgspec.DecodeError, base: str = "$") -> FieldError:
    """Turn a msgspec error into (path, message), placing an `InvalidField` at its field."""
    match = _AT.match(str(exc))
    message, path = (match["message"], match["path"]) if match else (str(exc), "")
    cause = exc.__cause__
    if isinstance(cause, InvalidField):
        return FieldError(join_path(join_path(base, path), cause.field), cause.message)
    return FieldError(join_path(base, path), message)


def field_errors(root: Any, body: bytes, *, limit: int) -> list[FieldError]:
    """Return up to `limit` errors decoding `body` as `root`: body order, then missing fields."""
    try:
        _RAW.decode(body)
    except msgspec.DecodeError as exc:
        return [FieldError("$", str(exc))]
    except RecursionError:
        return [FieldError("$", TOO_DEEP)]
    errors = _Errors(max(limit, 1))
    try:
        with contextlib.suppress(_Enough):
            _walk(msgspec.Raw(body), _info(root), "$", errors)
    except RecursionError:
        # Deep inside the walk: keep what was found on the way down.
        if len(errors.items) < errors.limit:
            errors.items.append(FieldError("$", TOO_DEEP))
    return errors.items


@functools.cache
def _info(tp: Any) -> mi.Type:
    return mi.type_info(tp)


@functools.cache
def _decoder(tp: Any) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(tp)


@functools.cache
def _field_types(cls: type[msgspec.Struct]) -> dict[str, Any]:
    return {f.encode_name: f.type for f in msgspec.structs.fields(cls)}


def _has_struct(t: mi.Type) -> bool:
    if isinstance(t, mi.StructType):
        return True
    if isinstance(t, _SEQUENCES):
        return _has_struct(t.item_type)
    if isinstance(t, mi.UnionType):
        return any(_has_struct(member) for member in t.types)
    return False


def _decode(decoder: msgspec.json.Decoder[Any], raw: msgspec.Raw, path: str, out: _Errors) -> Any:
    try:
        return decoder.decode(raw)
    except msgspec.DecodeError as exc:  # ValidationError too, and invalid UTF-8 in a piece
        error = split_message(exc, path)
        out.add(error.path, error.message)
        return None


def _walk(raw: msgspec.Raw, t: mi.Type, path: str, out: _Errors) -> None:
    if isinstance(t, mi.StructType):
        _walk_struct(raw, t, path, out)
    elif isinstance(t, _SEQUENCES):
        items = _decode(_RAW_ARRAY, raw, path, out)
        if items is None:
            return
        if t.min_length is not None and len(items) < t.min_length:
            out.add(path, f"Expected `array` of length >= {t.min_length}")
        if t.max_length is not None and len(items) > t.max_length:
            out.add(path, f"Expected `array` of length <= {t.max_length}")
        for i, item in enumerate(items):
            _walk(item, t.item_type, f"{path}[{i}]", out)
    elif isinstance(t, mi.UnionType):
        _walk_union(raw, t, path, out)
    else:  # pragma: no cover - _walk is only called for types _has_struct accepted
        raise TypeError(f"cannot walk {t!r}")


def _walk_union(raw: msgspec.Raw, t: mi.UnionType, path: str, out: _Errors) -> None:
    structs = [m for m in t.types if isinstance(m, mi.StructType)]
    if bytes(raw).strip() == b"null" and any(isinstance(m, mi.NoneType) for m in t.types):
        return
    if len(structs) == 1:
        _walk_struct(raw, structs[0], path, out)
        return
    # msgspec only allows several Structs in a union when they share a tag field.
    fields = _decode(_RAW_OBJECT, raw, path, out)
    tag_field = str(structs[0].tag_field)
    if fields is None:
        return
    if tag_field not in fields:
        out.add(f"{path}.{tag_field}", f"Object missing required field `{tag_field}`")
        return
    tag = _decode(_TAG, fields[tag_field], f"{path}.{tag_field}", out)
    if tag is None:
        return
    chosen = next((m for m in structs if m.tag == tag), None)
    if chosen is None:
        out.add(f"{path}.{tag_field}", f"Invalid value {tag!r}")
    else:
        _walk_struct(raw, chosen, path, out)


def _walk_struct(raw: msgspec.Raw, t: mi.StructType, path: str, out: _Errors) -> None:
    fields = _decode(_RAW_OBJECT, raw, path, out)
    if fields is None:
        return
    if t.tag_field in fields:
        # A tag that is not even a string (1e400, a 4,400-digit integer) is named by msgspec.
        tag = _decode(_TAG, fields[t.tag_field], f"{path}.{t.tag_field}", out)
        if tag is None:
            return
        if tag != t.tag:
            # Another document type altogether: its fields' errors would only be noise.
            out.add(f"{path}.{t.tag_field}", f"Invalid value {tag!r}")
            return
    known = {f.encode_name: f for f in t.fields}
    before = len(out.items)
    for name, value in fields.items():
        field_path = f"{path}.{name}"
        if name == t.tag_field:
            continue
        if name not in known:
            if t.forbid_unknown_fields:
                out.add(field_path, f"Object contains unknown field `{name}`")
        elif _has_struct(known[name].type):
            _walk(value, known[name].type, field_path, out)
        else:
            _decode(_decoder(_field_types(t.cls)[name]), value, field_path, out)
    for name, field in known.items():
        if field.required and name not in fields:
            out.add(f"{path}.{name}", f"Object missing required field `{name}`")
    if len(out.items) == before:
        # Every field is valid alone: what is left are the Struct's own cross-field rules.
        _decode(_decoder(t.cls), raw, path, out)
