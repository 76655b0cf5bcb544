"""A real OTLP/HTTP trace receiver for tests: `POST /v1/traces`, protobuf, as a collector takes it.

Each request is decoded with opentelemetry-proto's `ExportTraceServiceRequest` (the exporter's
own dependency) and its spans kept as plain values, with the resource they came from, so a
test asserts on what went over the wire.
"""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import anyio
import msgspec
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from protocols.http.server import serve


class ReceivedSpan(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str  # "" for a trace's root
    kind: int
    attributes: dict[str, Any]
    failed: bool
    service: str
    process: str

    def names(self, traceparent: str | None) -> bool:
        """Whether `traceparent` names this span as the parent (whatever its flags)."""
        return traceparent is not None and traceparent[:52] == f"00-{self.trace_id}-{self.span_id}"


class Collector:
    """ASGI app keeping every span exported to it."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.requests = 0

    def named(self, name: str) -> list[ReceivedSpan]:
        return [span for span in self.spans if span.name == name]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = dict(scope["headers"])
        if scope["path"] != "/v1/traces" or scope["method"] != "POST":
            await _answer(send, 404, b"")
            return
        if headers.get(b"content-encoding") == b"gzip":
            body = gzip.decompress(body)
        self.requests += 1
        self._keep(ExportTraceServiceRequest.FromString(body))
        await _answer(send, 200, ExportTraceServiceResponse().SerializeToString())

    def _keep(self, request: ExportTraceServiceRequest) -> None:
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        ReceivedSpan(
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            kind=span.kind,
                            attributes={a.key: _value(a.value) for a in span.attributes},
                            failed=span.status.code == 2,  # STATUS_CODE_ERROR
                            service=resource.get("service.name", ""),
                            process=resource.get("gateway.process", ""),
                        )
                    )


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return None if kind is None else getattr(value, kind)


async def _answer(send: Any, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/x-protobuf")],
        }
    )
    await send({"type": "http.response.body", "body": body})


@asynccontextmanager
async def collecting() -> AsyncIterator[tuple[Collector, str]]:
    """A collector on a loopback port for the block: (collector, its base URL)."""
    collector = Collector()
    async with anyio.create_task_group() as tg:
        port = await tg.start(partial(serve, collector, host="127.0.0.1", port=0))
        yield collector, f"http://127.0.0.1:{port}"
        tg.cancel_scope.cancel()
