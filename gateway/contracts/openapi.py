"""Build an OpenAPI 3.1 document from `Operation` tuples; msgspec writes the schemas.

Nothing here is written by hand per route: each HTTP surface lists its operations in a module
level `OPERATIONS` tuple (protocols/http/operations.py), and `openapi_document` turns any number
of those tuples into one document. `LISTENERS` names which tuples each listener serves; a new
surface is one more tuple in its listener's entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from gateway import admin
from gateway.contracts.schemas import refine
from protocols.http import api, ingress, pull
from protocols.http.operations import Link, Operation, Parameter, Response

__all__ = ["LISTENERS", "OPENAPI_VERSION", "SECURITY_SCHEMES", "openapi_document"]

OPENAPI_VERSION = "3.1.0"
_REF = "#/components/schemas/{name}"

# Which operations each listener serves.
LISTENERS: Mapping[str, tuple[tuple[Operation, ...], ...]] = {
    "partner": (ingress.OPERATIONS, pull.OPERATIONS),
    "admin": (admin.OPERATIONS,),
    "api": (api.OPERATIONS,),
}

SECURITY_SCHEMES: Mapping[str, dict[str, Any]] = {
    "bearer": {"type": "http", "scheme": "bearer"},
    "api_key": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    # Standard Webhooks: an HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}` with the
    # partner's `whsec_` secret, sent in `webhook-signature` beside the id and timestamp.
    "webhook": {
        "type": "apiKey",
        "in": "header",
        "name": "webhook-signature",
        "description": (
            "Standard Webhooks signature: `v1,` + base64 HMAC-SHA256 of "
            "`{webhook-id}.{webhook-timestamp}.{body}` keyed with the partner's whsec_ secret"
        ),
    },
}

# Response headers the operations name, and their schemas.
_HEADER_SCHEMAS: Mapping[str, dict[str, Any]] = {
    "Retry-After": {"type": "integer", "minimum": 0},
}


def openapi_document(
    operation_sets: Iterable[Iterable[Operation]],
    *,
    title: str,
    version: str,
    description: str = "",
) -> dict[str, Any]:
    """Return one OpenAPI 3.1 document describing every operation of every set given."""
    operations = [op for ops in operation_sets for op in ops]
    types = _types(operations)
    schemas, components = msgspec.json.schema_components(types, ref_template=_REF)
    schemas, components = refine(schemas), refine(components)
    schema_of = dict(zip(types, schemas, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, schema_of)
    used = sorted({name for op in operations for name in op.security})
    document: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {name: SECURITY_SCHEMES[name] for name in used},
        },
    }
    if description:
        document["info"]["description"] = description
    return document


def _types(operations: list[Operation]) -> list[Any]:
    """Every type the operations name, once each, in a stable order."""
    found: list[Any] = []
    seen: set[Any] = set()

    def add(value: Any) -> None:
        key = repr(value)  # Annotated and generic aliases are not always hashable alike
        if value is not None and key not in seen:
            seen.add(key)
            found.append(value)

    for op in operations:
        for parameter in op.parameters:
            add(parameter.type)
        add(op.request_body)
        for response in op.responses:
            add(response.body)
    return found


def _schema(value: Any, schema_of: Mapping[Any, dict[str, Any]]) -> dict[str, Any]:
    for known, schema in schema_of.items():
        if repr(known) == repr(value):
            return schema
    raise KeyError(value)


def _operation(op: Operation, schema_of: Mapping[Any, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary}
    if op.tags:
        out["tags"] = list(op.tags)
    if op.parameters:
        out["parameters"] = [_parameter(p, schema_of) for p in op.parameters]
    if op.request_body is not None:
        out["requestBody"] = {
            "required": True,
            "content": {op.request_media_type: {"schema": _schema(op.request_body, schema_of)}},
        }
    out["responses"] = {str(r.status): _response(r, schema_of) for r in op.responses}
    # An empty list would say "no authentication", which is what the probes mean.
    out["security"] = [{name: []} for name in op.security]
    return out


def _parameter(p: Parameter, schema_of: Mapping[Any, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": p.name,
        "in": p.where,
        "required": p.required or p.where == "path",
        "schema": _schema(p.type, schema_of),
    }
    if p.description:
        out["description"] = p.description
    return out


def _response(r: Response, schema_of: Mapping[Any, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"description": r.description}
    if r.body is not None:
        out["content"] = {r.media_type: {"schema": _schema(r.body, schema_of)}}
    if r.headers:
        out["headers"] = {
            name: {"schema": _HEADER_SCHEMAS.get(name, {"type": "string"})} for name in r.headers
        }
    if r.links:
        out["links"] = {link.name: _link(link) for link in r.links}
    return out


def _link(link: Link) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": link.operation_id}
    if link.parameters:
        out["parameters"] = dict(link.parameters)
    if link.request_body is not None:
        out["requestBody"] = link.request_body
    if link.description:
        out["description"] = link.description
    return out
