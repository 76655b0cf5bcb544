"""The tracer port: the spans a message's hops record, when tracing is configured.

Actors, transports and the store's writer record spans through `Tracer` alone; the gateway
implements it on OpenTelemetry (`gateway.telemetry`) and hands it down, so no package below
the composition root imports OpenTelemetry. Without a `[telemetry]` table there is no tracer
at all: each call site holds `None` and pays one `is None` test.

A span's parent is a W3C `traceparent` (the message's, as `canonical.tracecontext` keeps it),
so the spans of one message join up across processes and across the broker: the webhook's
ingress, the commit and relay publish in the store's writer process, the ERP's side, a
workflow step, a delivery attempt.

It lives in canonical for the reason `canonical.trace` does: every package may import it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Literal, Protocol, TypeVar

from canonical.errors import GatewayError

__all__ = ["AttributeValue", "Span", "SpanKind", "Tracer", "answered_in"]

AttributeValue = str | int | float | bool
SpanKind = Literal["internal", "server", "client", "producer", "consumer"]


class Span(Protocol):
    """One operation in progress; `end` it exactly once."""

    @property
    def traceparent(self) -> str:
        """This span as a `traceparent`: the parent of whatever the operation starts next."""
        ...

    def set_attribute(self, key: str, value: AttributeValue) -> None: ...

    def end(self, error: str | None = None) -> None:
        """End the span now; `error` marks it failed, with that description."""
        ...


class Tracer(Protocol):
    """Starts spans (and records spans already over) and exports them in the background."""

    def start(
        self,
        name: str,
        parent: str | None,
        *,
        kind: SpanKind = "internal",
        attributes: Mapping[str, AttributeValue] | None = None,
    ) -> Span:
        """Start a span, a child of `parent` (a `traceparent`), or a new trace's root if None."""
        ...

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
        """Record a span that is already over (unix nanoseconds): one per message of a batch."""
        ...

    def close(self) -> None:
        """Export what is left and stop the exporter; spans started afterwards are dropped."""
        ...


class _Answer(Protocol):
    @property
    def status(self) -> int: ...


A = TypeVar("A", bound=_Answer)


async def answered_in(span: Span, answer: Awaitable[A]) -> A:
    """Await `answer` in the server `span`, then end it with the HTTP status given: the
    answer's, or a refusal's (its reason as the span's error); a crash ends it failed too."""
    try:
        answered = await answer
    except GatewayError as error:
        span.set_attribute("http.response.status_code", error.status)
        span.end(error.reason)
        raise
    except BaseException as error:
        span.end(type(error).__name__)
        raise
    span.set_attribute("http.response.status_code", answered.status)
    span.end()
    return answered
