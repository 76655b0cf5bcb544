"""HTTP operations described as data, so contracts are generated from the Structs they speak.

Every HTTP surface (webhook ingress, customer API, pull API, admin API) lists its operations
as `Operation`s in a module-level tuple named `OPERATIONS`; `gateway openapi` turns those into
one OpenAPI 3.1 document per listener (msgspec generates the schemas). Nothing here runs on a
request path.
"""

from __future__ import annotations

from typing import Any, Literal

from msgspec import Struct

__all__ = ["Link", "Operation", "Parameter", "Response"]

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]


class Parameter(Struct, frozen=True, kw_only=True):
    """A path, query or header parameter."""

    name: str
    where: Literal["path", "query", "header"]
    type: Any = str  # a Python type msgspec can describe (str, int, Annotated[...])
    required: bool = False
    description: str = ""


class Link(Struct, frozen=True, kw_only=True):
    """An OpenAPI link: what a client can call next with values from this answer.

    `parameters` and `request_body` hold runtime expressions (`$response.body#/next`,
    `$request.path.partner`), as OpenAPI writes them; tools chain calls along them.
    """

    name: str
    operation_id: str
    parameters: tuple[tuple[str, str], ...] = ()
    request_body: Any = None
    description: str = ""


class Response(Struct, frozen=True, kw_only=True):
    """One documented answer: its status, its body type (None: no body) and media type."""

    status: int
    description: str
    body: Any = None  # a msgspec-describable type
    media_type: str = "application/json"  # "application/problem+json" for errors
    headers: tuple[str, ...] = ()  # names of response headers it carries (Retry-After, ...)
    links: tuple[Link, ...] = ()  # calls a client can make next with values from this answer


class Operation(Struct, frozen=True, kw_only=True):
    """One method on one path template (`/api/v1/orders/{order_id}`)."""

    method: Method
    path: str
    operation_id: str
    summary: str
    tags: tuple[str, ...] = ()
    parameters: tuple[Parameter, ...] = ()
    request_body: Any = None  # a msgspec-describable type, or None
    request_media_type: str = "application/json"
    responses: tuple[Response, ...] = ()
    security: tuple[str, ...] = ()  # names of security schemes ("bearer", "api_key", "webhook")
