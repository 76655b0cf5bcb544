"""The tracer (`canonical.tracing.Tracer`) on OpenTelemetry's SDK, exporting OTLP over HTTP.

Built only when the configuration has a `[telemetry]` table (`build_tracer` returns None
otherwise, and every call site then skips its span with one `is None` test: no provider, no
exporter thread, no span objects). Each process builds its own: the gateway's in `gateway.app`,
the store's writer process its own from the same settings (`tracer_factory`, pickled to it),
both named by `service.name` and told apart by `gateway.process`.

The tracer is a private `TracerProvider`, never OpenTelemetry's global one, and no span is ever
made "current": a span's parent is always the message's `traceparent`, handed in explicitly,
because the hops of one message run in different tasks, processes and systems. Spans go to
a `BatchSpanProcessor`, whose thread exports them; a collector that is away costs dropped
spans (logged by the SDK), never a request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import partial
from typing import Final

import anyio
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from canonical.tracing import AttributeValue, SpanKind, Tracer
from gateway.config.telemetry import TelemetrySettings

__all__ = ["OtelTracer", "build_tracer", "tracer_factory", "tracing"]

_KINDS: Final = {
    "internal": trace.SpanKind.INTERNAL,
    "server": trace.SpanKind.SERVER,
    "client": trace.SpanKind.CLIENT,
    "producer": trace.SpanKind.PRODUCER,
    "consumer": trace.SpanKind.CONSUMER,
}
_INSTRUMENTATION = "partner-gateway"


def build_tracer(settings: TelemetrySettings | None, *, process: str = "gateway") -> Tracer | None:
    """The tracer `settings` ask for, exporting to its collector; None without settings."""
    if settings is None:
        return None
    resource = Resource.create({"service.name": settings.service_name, "gateway.process": process})
    provider = TracerProvider(
        resource=resource,
        sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
        shutdown_on_exit=False,  # `close` does it, at the end the gateway chooses
    )
    exporter = OTLPSpanExporter(endpoint=settings.traces_url, timeout=settings.export_timeout_s)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return OtelTracer(provider)


def tracer_factory(settings: TelemetrySettings | None) -> partial[Tracer | None] | None:
    """What the store's writer process calls to build its own tracer (pickled to it)."""
    if settings is None:
        return None
    return partial(build_tracer, settings, process="store-writer")


class OtelTracer:
    """`canonical.tracing.Tracer` on one private OpenTelemetry `TracerProvider`."""

    def __init__(self, provider: TracerProvider) -> None:
        self._provider = provider
        self._tracer = provider.get_tracer(_INSTRUMENTATION)

    def start(
        self,
        name: str,
        parent: str | None,
        *,
        kind: SpanKind = "internal",
        attributes: Mapping[str, AttributeValue] | None = None,
    ) -> OtelSpan:
        span = self._tracer.start_span(
            name, _parent_context(parent), kind=_KINDS[kind], attributes=attributes
        )
        return OtelSpan(span)

    def record(
        self,
        name: str,
        parent: str | None,
        *,
        start_ns: int,
        end_ns: int,
        kind: SpanKind = "internal",
        attributes: Mapping[str, AttributeValue] | None = None,
        error: str | None = None,
    ) -> None:
        span = self._tracer.start_span(
            name,
            _parent_context(parent),
            kind=_KINDS[kind],
            attributes=attributes,
            start_time=start_ns,
        )
        if error is not None:
            span.set_status(trace.Status(trace.StatusCode.ERROR, error))
        span.end(end_time=end_ns)

    def close(self) -> None:
        """Export what is queued (within the exporter's timeout) and stop the export thread."""
        self._provider.shutdown()


class OtelSpan:
    """`canonical.tracing.Span` over an SDK span."""

    __slots__ = ("_span", "traceparent")

    def __init__(self, span: trace.Span) -> None:
        self._span = span
        context = span.get_span_context()
        self.traceparent = (
            f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
        )

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        self._span.set_attribute(key, value)

    def end(self, error: str | None = None) -> None:
        if error is not None:
            self._span.set_status(trace.Status(trace.StatusCode.ERROR, error))
        self._span.end()


def _parent_context(parent: str | None) -> Context:
    """The OpenTelemetry context whose span is `parent` (a valid `traceparent`), as remote.

    An empty context for None: the span starts a trace, whatever any caller made current.
    """
    if parent is None:
        return Context()
    span_context = trace.SpanContext(
        trace_id=int(parent[3:35], 16),
        span_id=int(parent[36:52], 16),
        is_remote=True,
        trace_flags=trace.TraceFlags(int(parent[53:55], 16)),
    )
    return trace.set_span_in_context(trace.NonRecordingSpan(span_context), Context())


@asynccontextmanager
async def tracing(settings: TelemetrySettings | None) -> AsyncIterator[Tracer | None]:
    """The gateway process's tracer for the block (None without settings), closed after it.

    Closing exports the last spans, which may wait on the collector up to the export timeout:
    in a worker thread, shielded, so neither the event loop nor a cancellation cuts it short.
    """
    tracer = build_tracer(settings)
    try:
        yield tracer
    finally:
        if tracer is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(tracer.close)
