"""Bytes to canonical documents and envelopes and back, with encoders and decoders built once.

A document's fast path is one untyped `Decoder.decode` and one `msgspec.convert` to its type:
the untyped value also proves that no key repeats (`canonical.duplicates`), which a typed
decode cannot, and decoding once and converting costs less than a typed decode plus a second,
untyped parse (PO sample, callgrind: 242k instructions against 252k). Numbers are read as
`Decimal` so no amount passes through a float. Only when that fails does
`canonical.validation` walk the body again to name every invalid field, so a valid body pays
nothing for that.

Whatever the bytes, the decoders return a value or raise `InvalidDocument`: never msgspec's
own errors, nor the `RecursionError` it raises for a body nested too deeply
(tests/test_canonical_fuzz.py holds them to that).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

import msgspec

from canonical.documents import DOCUMENT_TYPES, Document
from canonical.duplicates import repeated_keys
from canonical.envelope import Envelope
from canonical.errors import FieldError, InvalidDocument
from canonical.validation import TOO_DEEP, field_errors, split_message

__all__ = [
    "MAX_FIELD_ERRORS",
    "decode_document",
    "decode_envelope",
    "encode_document",
    "encode_envelope",
]

# Errors listed in one rejection: enough to fix a body in one go, bounded for the response.
MAX_FIELD_ERRORS = 50

# Decimals go out as JSON strings: exact, and no partner's parser turns them into floats.
_ENCODER = msgspec.json.Encoder(decimal_format="string")
_ENVELOPE_DECODER = msgspec.json.Decoder(Envelope)
_UNTYPED = msgspec.json.Decoder(float_hook=Decimal)


def decode_document(
    document_type: str, body: bytes, *, max_errors: int = MAX_FIELD_ERRORS
) -> Document:
    """Decode `body` as a `document_type` document; "document_type" in the body is optional.

    Raises `InvalidDocument` for an unknown type, a body that is not JSON (one error at "$"),
    or an invalid document, whose `errors` name every bad field (up to `max_errors`); a key
    repeated within an object is one of them (`canonical.duplicates`).
    """
    root = DOCUMENT_TYPES.get(document_type)
    if root is None:
        known = ", ".join(DOCUMENT_TYPES)
        raise InvalidDocument(
            f"unknown document type {document_type!r}",
            errors=[FieldError("$.document_type", f"Expected one of: {known}")],
        )
    # One parse serves both checks: the untyped value proves no key repeats (most bodies
    # settle that with a count) and is then converted by the typed rules.
    try:
        value = _UNTYPED.decode(body)
        repeats = repeated_keys(body, parsed=value)
        document = cast(Document, msgspec.convert(value, root))
    except (msgspec.DecodeError, RecursionError) as exc:
        raise _invalid(document_type, root, body, exc, max_errors) from None
    if repeats:
        raise _refusal(document_type, repeats[:max_errors], max_errors)
    return document


def decode_envelope(body: bytes, *, max_errors: int = MAX_FIELD_ERRORS) -> Envelope:
    """Decode an encoded `Envelope`; raises `InvalidDocument` naming every bad field."""
    try:
        return _ENVELOPE_DECODER.decode(body)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise _invalid("envelope", Envelope, body, exc, max_errors) from None


def encode_document(document: Document) -> bytes:
    """Encode a document as JSON, "document_type" tag included."""
    return _ENCODER.encode(document)


def encode_envelope(envelope: Envelope) -> bytes:
    """Encode an envelope as JSON: the body stored in the outbox and published."""
    return _ENCODER.encode(envelope)


def _invalid(
    name: str,
    root: Any,
    body: bytes,
    exc: msgspec.DecodeError | RecursionError,
    max_errors: int,
) -> InvalidDocument:
    errors = field_errors(root, body, limit=max_errors)
    if not errors:  # the walk should always find what msgspec found; never report nothing
        errors = [
            split_message(exc)
            if isinstance(exc, msgspec.DecodeError)
            else FieldError("$", TOO_DEEP)
        ]
    # Repeated keys too, so one answer lists everything to fix.
    errors += repeated_keys(body)[: max(max_errors - len(errors), 0)]
    return _refusal(name, errors, max_errors)


def _refusal(name: str, errors: list[FieldError], max_errors: int) -> InvalidDocument:
    count = f"{len(errors)} or more" if len(errors) >= max_errors else str(len(errors))
    plural = "s" if len(errors) != 1 else ""
    return InvalidDocument(f"{name}: {count} invalid field{plural}", errors=errors)
