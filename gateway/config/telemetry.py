"""Tracing: `[telemetry]`, the OTLP/HTTP collector the gateway's spans are exported to.

Without the table the gateway records no spans and starts no exporter (it still carries
`traceparent` headers across). With it, every process of the gateway (the main one and the
store's writer) exports its spans to `otlp_endpoint`:

    [telemetry]
    otlp_endpoint = "http://127.0.0.1:4318"   # the collector; spans go to <endpoint>/v1/traces
    service_name = "partner-gateway"          # the `service.name` resource attribute
    sample_ratio = 1.0                        # share of new traces recorded (0 to 1)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated
from urllib.parse import urlsplit

import msgspec

from gateway.config.base import Base, Name, Problem, Seconds, known

__all__ = ["TelemetrySettings"]


class TelemetrySettings(Base, frozen=True):
    """Where spans are exported (OTLP over HTTP, protobuf) and how many traces are kept."""

    # The collector's base URL; the exporter posts to `<otlp_endpoint>/v1/traces`.
    otlp_endpoint: Name
    service_name: Name = "partner-gateway"
    # A trace the gateway starts is recorded with this probability; one it continues follows
    # the sampled flag of the `traceparent` it came with (W3C's parent-based sampling).
    sample_ratio: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 1.0
    # The exporter's bound for one batch (retries included); a collector that is away costs
    # dropped spans only, and a stop waits at most this long for the last spans to go.
    export_timeout_s: Seconds = 5.0

    def problems(self) -> Iterator[Problem]:
        with known():
            try:
                parts = urlsplit(self.otlp_endpoint)
                parts.port  # noqa: B018 - raises ValueError on a port that is not a number
            except ValueError:
                parts = None
            if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
                yield "otlp_endpoint", "expected http(s)://host[:port], e.g. http://127.0.0.1:4318"
            elif parts.path.rstrip("/").endswith("/v1/traces"):
                yield "otlp_endpoint", "the collector's base URL: /v1/traces is added to it"

    @property
    def traces_url(self) -> str:
        """Where the exporter posts: the OTLP/HTTP traces path under the endpoint."""
        return self.otlp_endpoint.rstrip("/") + "/v1/traces"
