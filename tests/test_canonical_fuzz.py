"""Whatever bytes arrive, the codec answers with a document or `InvalidDocument`, nothing else.

Derandomized, so the suite is repeatable; `python tests/test_canonical_fuzz.py SECONDS` runs the
same properties with fresh randomness for a while, to look for more.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from canonical import (
    DOCUMENT_TYPES,
    InvalidDocument,
    decode_document,
    decode_envelope,
    encode_envelope,
    new_envelope,
    sample_body,
    sample_document,
)

SUITE = settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

ENVELOPE = "envelope"

document_types = st.sampled_from(sorted(DOCUMENT_TYPES))


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


# Every key a document can have, so generated objects reach the typed fields and their rules.
FIELD_NAMES = sorted({k for name in DOCUMENT_TYPES for k in _keys(json.loads(sample_body(name)))})

# Numbers that trip decoders: huge integers (past CPython's 4,300-digit str limit), exponents
# past a double's range, and the edges of the fixed-width types.
awkward_numbers = st.one_of(
    st.integers().map(str),
    st.integers(min_value=4000, max_value=5000).map(lambda n: "9" * n),
    st.sampled_from(["1e400", "-1e400", "1e-400", "0e400", "1E+999999999", "-0", "0.0e-7"]),
    st.sampled_from([str(2**63), str(-(2**63) - 1), str(2**64), "1" + "0" * 30]),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
)
# Text with the characters that matter: NUL and other controls, invalid surrogates (as escapes),
# and non-ASCII.
awkward_text = st.one_of(
    st.text(),
    st.sampled_from(["", " ", "\x00", "PO-1\x00", "\x1b[31m", "\u2028", "\ud800", "é" * 40]),
)


# Every value is JSON text already, so keys may repeat and numbers keep their exact spelling.
scalars = st.one_of(
    st.sampled_from(["null", "true", "false"]),
    awkward_numbers,
    awkward_text.map(json.dumps),
    st.sampled_from(['"2026-03-02"', '"2026-03-02T10:00:00Z"', '"12.50"', '"EA"', '"USD"']),
)


def _array(items: list[str]) -> str:
    return "[" + ",".join(items) + "]"


def _object(pairs: list[tuple[str, str]]) -> str:
    return "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in pairs) + "}"


json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(_array),
        st.lists(
            st.tuples(st.one_of(st.sampled_from(FIELD_NAMES), awkward_text), inner), max_size=6
        ).map(_object),
    ),
    max_leaves=30,
)


@st.composite
def mutated_samples(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid sample body of some type with one value somewhere replaced by an awkward one."""
    name = draw(document_types)
    body = json.loads(sample_body(name, draw(st.integers(0, 50))))
    spots = list(_spots(body))
    container, key = draw(st.sampled_from(spots))
    replacement = draw(json_values)
    marker = "\x00MARK\x00"
    container[key] = marker
    text = json.dumps(body).replace(json.dumps(marker), replacement)
    return draw(st.sampled_from([name, *DOCUMENT_TYPES])), text.encode()


def _spots(value: Any) -> Any:
    if isinstance(value, dict):
        for key, item in value.items():
            yield value, key
            yield from _spots(item)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield value, i
            yield from _spots(item)


@st.composite
def damaged_bytes(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid sample body with a few bytes replaced, inserted or removed, including non-UTF-8."""
    name = draw(document_types)
    body = bytearray(sample_body(name, draw(st.integers(0, 50))))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(body)))
        junk = draw(st.binary(min_size=0, max_size=4) | st.sampled_from([b"\xa1", b"\xff", b"["]))
        cut = draw(st.integers(0, 3))
        body[at : at + cut] = junk
    return name, bytes(body)


def deeply_nested(depth: int, *, key: str = "x") -> bytes:
    return b'{"' + key.encode() + b'":' + b"[" * depth + b"]" * depth + b"}"


STRATEGIES = {
    "any JSON": st.tuples(document_types, json_values.map(str.encode)),
    "a sample with an awkward value": mutated_samples(),
    "a sample with damaged bytes": damaged_bytes(),
    "any bytes as an envelope": st.tuples(
        st.just(ENVELOPE), st.binary(max_size=200) | json_values.map(str.encode)
    ),
}


def check(case: tuple[str, bytes]) -> None:
    """Decode `case` (document type or ENVELOPE, body): a value or InvalidDocument, no other."""
    name, body = case
    try:
        if name == ENVELOPE:
            decode_envelope(body)
        else:
            decode_document(name, body)
    except InvalidDocument as error:
        rejected = error
    else:
        return
    assert rejected.errors, "a rejection names at least one field"
    assert all(e.path.startswith("$") for e in rejected.errors)


REPORTED = [
    ("invoice", deeply_nested(1000)),
    ("item_master", b'{"\xa1":""}'),
    ("invoice", b'{"document_type":1e400}'),
    ("invoice", b'{"document_type":' + b"9" * 4400 + b"}"),
]


@pytest.mark.parametrize(("document_type", "body"), REPORTED)
def test_reported_bodies_are_invalid_documents(document_type: str, body: bytes) -> None:
    with pytest.raises(InvalidDocument) as caught:
        decode_document(document_type, body)
    assert caught.value.errors


@pytest.mark.parametrize("depth", [10, 500, 999, 1000, 5000, 100_000])
@pytest.mark.parametrize("document_type", sorted(DOCUMENT_TYPES))
def test_nesting_of_any_depth_is_an_invalid_document(document_type: str, depth: int) -> None:
    for body in (deeply_nested(depth), deeply_nested(depth, key="lines"), b"[" * depth):
        check((document_type, body))


@pytest.mark.parametrize("strategy", list(STRATEGIES))
@SUITE
@given(data=st.data())
def test_only_invalid_document_escapes_the_codec(strategy: str, data: st.DataObject) -> None:
    check(data.draw(STRATEGIES[strategy]))


def test_an_envelope_with_a_deeply_nested_unknown_field_is_invalid() -> None:
    envelope = encode_envelope(
        new_envelope(sample_document("purchase_order"), partner_id="acme", idempotency_key="k")
    )
    body = envelope[:-1] + b',"later":' + b"[" * 5000 + b"]" * 5000 + b"}"
    with pytest.raises(InvalidDocument):
        decode_envelope(body)


if __name__ == "__main__":  # pragma: no cover - a local fuzzing run, not part of the suite
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    deadline = time.monotonic() + seconds
    explore = settings(SUITE, derandomize=False, max_examples=1_000, database=None)
    rounds = 0
    while time.monotonic() < deadline:
        explore(given(case=st.one_of(*STRATEGIES.values()))(check))()
        rounds += 1
    print(f"{rounds} rounds of 1,000 random cases: nothing escaped but InvalidDocument")
