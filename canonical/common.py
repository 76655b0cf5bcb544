"""Value types every canonical document shares: codes, money, quantities, parties, rule checks.

Constraints live in the types (`msgspec.Meta`), so a bad value fails decoding with its path.
What `Meta` cannot say (msgspec has no numeric bounds for `Decimal`, no cross-field rules) is
checked in `__post_init__` by raising `InvalidField`, which names the offending field relative
to the Struct so the codec can report the full path (`$.lines[2].quantity.value`).

Money and quantities are `Decimal`, never float. On the wire they are JSON strings ("12.50");
a JSON number is accepted too and msgspec parses its text straight into a `Decimal`, so no
binary float ever touches the value. The JSON Schema publishes the string form, the one to
send. Built in Python, a float is refused.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Annotated, ClassVar

from msgspec import Meta, Struct

__all__ = [
    "MAX_DECIMAL_PLACES",
    "MAX_INTEGER_DIGITS",
    "MAX_LINES",
    "Address",
    "CanonicalDocument",
    "CountryCode",
    "CurrencyCode",
    "DocumentNumber",
    "Gln",
    "Gtin",
    "InvalidField",
    "LineNumber",
    "LocationCode",
    "Money",
    "PartnerId",
    "PartyCode",
    "PartyRef",
    "Quantity",
    "Scac",
    "Sku",
    "Sscc",
    "Text",
    "Timestamp",
    "UomCode",
    "check_decimal",
    "check_gs1",
    "check_unique",
    "gs1_check_digit",
    "whole",
]

# Bounds on every decimal: ERP columns are typically DECIMAL(21,6); the bound also keeps
# checks like "total = sum of lines" exact and cheap (no 1E+400 reaches the arithmetic).
MAX_INTEGER_DIGITS = 15
MAX_DECIMAL_PLACES = 6
# Lines per document: far above real orders, low enough that one body cannot balloon.
MAX_LINES = 10_000


def whole(pattern: str) -> str:
    """Anchor a regex (no top-level `|`) to the whole string, in Python and in JSON Schema.

    msgspec applies a pattern with `re.search`, whose `$` also matches before a final newline:
    `^[A-Z]{3}$` let "USD\\n" through. `(?!\\n)` after the `$` closes that in Python and means
    nothing in ECMA-262, the dialect the published JSON Schemas are read in.
    """
    return f"^{pattern}$(?!\\n)"


# Identifiers that reach ERP columns, EDI segments and file names: no whitespace at either end
# and no control character (C0, DEL, C1) anywhere. A NUL ends a C string early; a newline
# splits a segment or a row.
_CODE = r"[^\s\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?"

PartnerId = Annotated[
    str,
    # No dots: the partner id is one word of the `{document}.{partner}` topic routing key.
    Meta(pattern=whole(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"), description="Partner id, no dots"),
]
DocumentNumber = Annotated[
    str,
    Meta(min_length=1, max_length=35, pattern=whole(_CODE), description="PO/ASN/invoice no."),
]
PartyCode = Annotated[str, Meta(min_length=1, max_length=35, pattern=whole(_CODE))]
LocationCode = Annotated[str, Meta(min_length=1, max_length=35, pattern=whole(_CODE))]
Sku = Annotated[
    str,
    Meta(min_length=1, max_length=48, pattern=whole(r"[A-Za-z0-9][A-Za-z0-9._/-]*")),
]
Gtin = Annotated[
    str, Meta(pattern=whole(r"([0-9]{8}|[0-9]{12,14})"), description="GTIN-8/12/13/14")
]
Sscc = Annotated[
    str, Meta(pattern=whole(r"[0-9]{18}"), description="Serial shipping container code")
]
Gln = Annotated[str, Meta(pattern=whole(r"[0-9]{13}"), description="GS1 global location number")]
UomCode = Annotated[
    str, Meta(pattern=whole(r"[A-Z0-9]{1,6}"), description="Unit of measure: EA, CS")
]
CurrencyCode = Annotated[str, Meta(pattern=whole(r"[A-Z]{3}"), description="ISO 4217 code")]
CountryCode = Annotated[str, Meta(pattern=whole(r"[A-Z]{2}"), description="ISO 3166-1 alpha-2")]
Scac = Annotated[str, Meta(pattern=whole(r"[A-Z]{2,4}"), description="Carrier SCAC")]
LineNumber = Annotated[int, Meta(ge=1, le=999_999)]
Text = Annotated[str, Meta(max_length=500)]
# Timestamps carry their offset: a naive time from a partner in another zone is a guess.
Timestamp = Annotated[dt.datetime, Meta(tz=True)]


class InvalidField(ValueError):
    """A cross-field rule failed; `field` is the path relative to the Struct (`lines[2].sku`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def check_decimal(field: str, value: object, *, signed: bool = False) -> None:
    """Raise `InvalidField` unless `value` is a finite, bounded (and by default >= 0) Decimal."""
    # Runs for every amount and quantity decoded (six times for the sample order), so the
    # common case takes the cheapest exact test: Decimal's str() is plain notation whenever the
    # exponent is <= 0 and the value is not tiny, and then the places are the digits after the
    # dot. `as_tuple()` costs ten times as much. Anything unusual takes the path that names
    # what is wrong.
    if value.__class__ is Decimal and value.is_finite():
        low = _LOWEST if signed else _ZERO
        if low <= value < _BOUND:
            text = str(value)
            if "E" not in text:
                dot = text.find(".")
                if dot < 0 or len(text) - dot - 1 <= MAX_DECIMAL_PLACES:
                    return
    _explain_decimal(field, value, signed=signed)


_ZERO = Decimal(0)
_BOUND = Decimal(10) ** MAX_INTEGER_DIGITS
_LOWEST = -_BOUND


def _explain_decimal(field: str, value: object, *, signed: bool) -> None:
    if not isinstance(value, Decimal):
        raise InvalidField(field, f"must be a Decimal, not {type(value).__name__}")
    if not value.is_finite():
        raise InvalidField(field, "must be a finite number")
    if not signed and value < 0:
        raise InvalidField(field, "must be >= 0")
    if value and value.adjusted() >= MAX_INTEGER_DIGITS:
        raise InvalidField(field, f"must have at most {MAX_INTEGER_DIGITS} integer digits")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_DECIMAL_PLACES:
        raise InvalidField(field, f"must have at most {MAX_DECIMAL_PLACES} decimal places")


def gs1_check_digit(digits: str) -> str:
    """Return the GS1 mod-10 check digit for a GTIN/SSCC/GLN without its last digit."""
    return str(-_gs1_weighted(digits.encode("ascii"), 3) % 10)


def _gs1_weighted(digits: bytes, last_weight: int) -> int:
    # Weights alternate from the right, the rightmost digit's being `last_weight` (3 for a
    # code without its check digit, 1 with it). Summing byte slices keeps this off the
    # per-character Python path: it runs for every GTIN, SSCC and GLN decoded.
    near, far = digits[::-2], digits[-2::-2]
    other = 4 - last_weight
    return last_weight * (sum(near) - 48 * len(near)) + other * (sum(far) - 48 * len(far))


def check_gs1(field: str, code: str | None) -> None:
    """Raise `InvalidField` if a GTIN/SSCC/GLN's last digit is not its GS1 check digit."""
    # With its check digit, a valid code's weighted sum is a multiple of 10. The field's
    # pattern has already made it ASCII digits.
    if code is not None and _gs1_weighted(code.encode("ascii"), 1) % 10:
        raise InvalidField(field, "check digit is wrong")


def check_unique(field: str, key: str, values: Iterable[object]) -> None:
    """Raise `InvalidField` at `field[i].key` for the first value seen twice."""
    values = list(values)
    if len(set(values)) == len(values):
        return
    seen: set[object] = set()
    for i, value in enumerate(values):
        if value in seen:
            raise InvalidField(f"{field}[{i}].{key}", f"duplicate {key} {value!r}")
        seen.add(value)


class Money(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An amount in one currency; negative for credits."""

    amount: Decimal
    currency: CurrencyCode

    def __post_init__(self) -> None:
        check_decimal("amount", self.amount, signed=True)


class Quantity(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A non-negative count or measure with its unit of measure."""

    value: Decimal
    uom: UomCode

    def __post_init__(self) -> None:
        check_decimal("value", self.value)


class Address(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A postal address."""

    line1: Annotated[str, Meta(min_length=1, max_length=55)]
    line2: Annotated[str, Meta(max_length=55)] | None = None
    city: Annotated[str, Meta(min_length=1, max_length=30)]
    region: Annotated[str, Meta(max_length=3)] | None = None
    postal_code: Annotated[str, Meta(min_length=1, max_length=15)]
    country: CountryCode


class PartyRef(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A trading partner or site: our code for it, optionally its GLN, name and address."""

    party_id: PartyCode
    name: Annotated[str, Meta(max_length=60)] | None = None
    gln: Gln | None = None
    address: Address | None = None

    def __post_init__(self) -> None:
        check_gs1("gln", self.gln)


class CanonicalDocument(
    Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="document_type"
):
    """Base of every business document.

    Subclasses pass `tag="<document_type>"`, `frozen=True` and `kw_only=True`: msgspec applies
    `kw_only` per class, and type checkers want `frozen` restated. `schema_version` rises when
    a change is not additive.
    """

    schema_version: ClassVar[int] = 1
