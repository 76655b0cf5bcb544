"""JSON Schema (draft 2020-12) for each canonical document and the envelope, from the Structs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from canonical.documents import DOCUMENT_TYPES
from canonical.envelope import Envelope

__all__ = ["DIALECT", "document_schemas", "write_schemas"]

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def document_schemas() -> dict[str, dict[str, Any]]:
    """Return one JSON Schema per document type, plus "envelope", keyed by name."""
    schemas = {name: _document_schema(name, cls) for name, cls in DOCUMENT_TYPES.items()}
    schemas["envelope"] = _with_header(msgspec.json.schema(Envelope), "envelope", version=1)
    return schemas


def write_schemas(out_dir: Path) -> list[Path]:
    """Write `<name>.schema.json` for every schema into `out_dir` (created); return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, schema in document_schemas().items():
        path = out_dir / f"{name}.schema.json"
        path.write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def _document_schema(name: str, cls: type[msgspec.Struct]) -> dict[str, Any]:
    schema = msgspec.json.schema(cls)
    root = schema["$defs"][cls.__name__]
    # The webhook URL names the document type, so a posted body may leave the tag out, and
    # the decoder accepts that. Inside the envelope's union the tag stays required.
    root["required"] = [f for f in root["required"] if f != "document_type"]
    return _with_header(schema, name, version=getattr(cls, "schema_version", 1))


def _with_header(schema: dict[str, Any], name: str, *, version: int) -> dict[str, Any]:
    return {"$schema": DIALECT, "title": name, "x-schema-version": version, **schema}
