"""Contracts generated from the code: OpenAPI 3.1 per HTTP listener, AsyncAPI 3.0 for events.

`openapi_json(listener)` and `asyncapi_json()` return the documents as bytes, built once per
process (they depend only on the code); the admin listener serves them and `gateway openapi` /
`gateway asyncapi` write them.
"""

from __future__ import annotations

import functools

import orjson

from gateway.contracts.asyncapi import asyncapi_document
from gateway.contracts.openapi import LISTENERS, openapi_document

__all__ = ["LISTENERS", "asyncapi_for", "asyncapi_json", "openapi_for", "openapi_json"]

VERSION = "1"
_TITLES = {
    "partner": "partner-gateway partner listener (webhooks and pull)",
    "admin": "partner-gateway admin listener",
    "api": "partner-gateway customer API",
}


def openapi_for(listener: str) -> dict[str, object]:
    """The OpenAPI document of one listener ("partner", "admin" or "api"), as JSON values."""
    document = openapi_document(LISTENERS[listener], title=_TITLES[listener], version=VERSION)
    # Through JSON once: msgspec writes a tuple default as a tuple, and validators want lists.
    return orjson.loads(orjson.dumps(document))  # type: ignore[no-any-return]


def asyncapi_for() -> dict[str, object]:
    """The AsyncAPI document of the events exchange and outbound webhooks, as JSON values."""
    return orjson.loads(orjson.dumps(asyncapi_document()))  # type: ignore[no-any-return]


@functools.cache
def openapi_json(listener: str) -> bytes:
    """`openapi_for` as indented JSON bytes, built once per listener."""
    return orjson.dumps(openapi_for(listener), option=orjson.OPT_INDENT_2)


@functools.cache
def asyncapi_json() -> bytes:
    """`asyncapi_for` as indented JSON bytes, built once."""
    return orjson.dumps(asyncapi_for(), option=orjson.OPT_INDENT_2)
