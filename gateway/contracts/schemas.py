"""What msgspec's JSON Schema leaves unsaid about the canonical types, said once for both
contracts.

msgspec writes a `Decimal` as `{"type": "string", "format": "decimal"}`. "decimal" is no JSON
Schema format, so a client or a generator reading the contract would take any string, and the
gateway refuses all but plain decimal notation within `MAX_INTEGER_DIGITS` integer digits and
`MAX_DECIMAL_PLACES` places (canonical/common.py `check_decimal`). The pattern says so. The
sign is allowed by the pattern: which fields are signed is a rule of each document, answered
with 422 and the field's path.
"""

from __future__ import annotations

from typing import Any

from canonical.common import MAX_DECIMAL_PLACES, MAX_INTEGER_DIGITS

__all__ = ["DECIMAL_PATTERN", "refine"]

DECIMAL_PATTERN = rf"^-?[0-9]{{1,{MAX_INTEGER_DIGITS}}}(\.[0-9]{{1,{MAX_DECIMAL_PLACES}}})?$"


def refine(schema: Any) -> Any:
    """Return `schema` with every msgspec decimal string given the pattern the gateway takes."""
    if isinstance(schema, dict):
        out = {key: refine(value) for key, value in schema.items()}
        if out.get("type") == "string" and out.get("format") == "decimal":
            out.setdefault("pattern", DECIMAL_PATTERN)
        return out
    if isinstance(schema, list):
        return [refine(item) for item in schema]
    return schema
