"""Prometheus metrics of the gateway, on a registry of its own (no module-level globals).

Counters on hot paths are `prometheus_client` children resolved once per label set; figures
that components already keep in `statistics()` (mailbox depth, restarts, relay counts) are read
at scrape time by a collector instead of being counted twice.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import accumulate
from typing import TYPE_CHECKING, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from actors.delivery import CourierStatistics

__all__ = [
    "DEAD_LETTER_KINDS",
    "LATENCY_BUCKETS",
    "GatewayMetrics",
    "LatencyTally",
    "StatsReading",
]

StatsReading = tuple[str, Literal["gauge", "counter"], str, Callable[[], float]]
"""(metric name, kind, help, read) for one figure read at scrape time."""

# Every source kind the gateway dead-letters from (gateway/store/dead_letters.py), exported
# at 0 before the first one, so an alert on the series has something to evaluate.
DEAD_LETTER_KINDS = frozenset({"delivery", "relay", "amqp", "intake", "actor"})
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
# Minutes to days: suppliers acknowledge in hours.
_ACK_BUCKETS = (60, 300, 900, 1800, 3600, 4 * 3600, 8 * 3600, 24 * 3600, 48 * 3600, 96 * 3600)
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class _ScrapeTimeCollector(Collector):
    def __init__(self, readings: Iterable[StatsReading]) -> None:
        self.readings = list(readings)

    def collect(self) -> Iterable[Metric]:
        for name, kind, help_text, read in self.readings:
            family: Metric
            if kind == "counter":
                family = CounterMetricFamily(name, help_text)
            else:
                family = GaugeMetricFamily(name, help_text)
            family.add_metric([], read())
            yield family


class LatencyTally:
    """A latency histogram's counts, without prometheus_client: small, plain and picklable.

    Kept where the figures arise (the relay, in the store's writer process) and shipped to
    the process that serves /metrics, which exports the latest copy at scrape time.
    """

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last: above every bound (+Inf)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        # Prometheus buckets are upper bounds, inclusive: `le`.
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.total += seconds


class _TallyCollector(Collector):
    def __init__(self, name: str, help_text: str, read: Callable[[], LatencyTally | None]) -> None:
        self.name, self.help_text, self.read = name, help_text, read

    def collect(self) -> Iterable[Metric]:
        tally = self.read() or LatencyTally()
        cumulative = list(accumulate(tally.counts))
        buckets = [(repr(float(b)), n) for b, n in zip(tally.bounds, cumulative, strict=False)]
        buckets.append(("+Inf", cumulative[-1]))
        yield HistogramMetricFamily(
            self.name, self.help_text, buckets=buckets, sum_value=tally.total
        )


class GatewayMetrics:
    """Every metric the gateway exports."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "gateway_requests",
            "Webhook requests answered, refusals included",
            ["partner", "document", "status"],
            registry=r,
        )
        self._answered: dict[tuple[str, str, int], Counter] = {}
        self.commit_batch = Histogram(
            "gateway_store_commit_batch_size",
            "Acceptances per group commit",
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.commit_failures = Counter(
            "gateway_store_commit_failures", "Group commits rolled back", registry=r
        )
        self.outbox_backlog = Gauge(
            "gateway_outbox_backlog", "Outbox rows not yet confirmed by the broker", registry=r
        )
        self.outbox_oldest_age = Gauge(
            "gateway_outbox_oldest_age_seconds", "Age of the oldest pending outbox row", registry=r
        )
        self.deliveries = Counter(
            "gateway_deliveries",
            "Outbound delivery attempts by partner and what became of the delivery",
            ["partner", "outcome"],
            registry=r,
        )
        self.delivery_latency = Histogram(
            "gateway_delivery_attempt_latency_seconds",
            "Outbound delivery attempt latency (request to answer)",
            buckets=(*LATENCY_BUCKETS, 10, 15, 30),
            registry=r,
        )
        self.delivery_backlog = Gauge(
            "gateway_delivery_backlog",
            "Outbound deliveries pending (retry queue depth)",
            ["partner"],
            registry=r,
        )
        self.dead_letters = Gauge(
            "gateway_dead_letters",
            "Dead letters kept in the store, waiting for an operator, by source kind",
            ["source"],
            registry=r,
        )
        self.delivery_breaker = Gauge(
            "gateway_delivery_breaker_state",
            "Endpoint circuit: 0 closed, 1 half-open, 2 open, 3 disabled (410 Gone)",
            ["partner"],
            registry=r,
        )

        # The purchase-order threads (gateway/workflow.py observes each committed step).
        self.ack_latency = Histogram(
            "gateway_workflow_ack_latency_seconds",
            "Order delivered to the supplier -> its acknowledgement accepted",
            ["partner"],
            buckets=_ACK_BUCKETS,
            registry=r,
        )
        self.workflow_exceptions = Counter(
            "gateway_workflow_exceptions",
            "Business exceptions raised by the purchase-order threads",
            ["partner", "kind"],
            registry=r,
        )
        self.invoice_matches = Counter(
            "gateway_workflow_invoice_matches",
            "Three-way matches by result (matched, held): the match rate",
            ["partner", "result"],
            registry=r,
        )
        self.receipts = Counter(
            "gateway_workflow_receipts",
            "Goods receipts applied, with or without a discrepancy: the discrepancy ratio",
            ["partner", "discrepancy"],
            registry=r,
        )
        self.asns = Counter(
            "gateway_workflow_asns",
            "ASNs applied, before or after their deadline (ASN timeliness)",
            ["partner", "timely"],
            registry=r,
        )
        self.threads = Gauge(
            "gateway_workflow_threads", "Purchase-order threads by status", ["status"], registry=r
        )
        self.overdue_timers = Gauge(
            "gateway_workflow_overdue_timers",
            "Armed timers past their due time (they fire at once; growing means stalled)",
            registry=r,
        )

        # X12 sets sent to partners (gateway/edi_watch.py samples it each sweep).
        self.edi_unacknowledged = Gauge(
            "gateway_edi_unacknowledged_sets",
            "X12 sets sent longer ago than the partner's unacknowledged_after_s with no 997/999",
            ["partner"],
            registry=r,
        )

    def request_answered(self, partner: str, document: str, status: int) -> None:
        """Count one webhook answer; the ingress keeps the labels bounded (`AnswerObserver`)."""
        key = (partner, document, status)
        child = self._answered.get(key)
        if child is None:
            child = self._answered[key] = self.requests.labels(partner, document, str(status))
        child.inc()

    def sample_dead_letters(self, counts: Mapping[str, int]) -> None:
        """Set the dead-letter gauge from the store's counts by source kind (absent ones: 0)."""
        for kind in DEAD_LETTER_KINDS | counts.keys():
            self.dead_letters.labels(kind).set(counts.get(kind, 0))

    def delivery_attempt(self, partner: str, outcome: str, latency_s: float) -> None:
        """Count one delivery attempt (outcome: delivered, retried, dead, disabled, lost)."""
        self.deliveries.labels(partner, outcome).inc()
        if latency_s:
            self.delivery_latency.observe(latency_s)

    def sample_deliveries(
        self, backlog: Mapping[str, int], couriers: Mapping[str, CourierStatistics]
    ) -> None:
        """Set the delivery gauges from the store's backlog and the couriers' statistics."""
        for partner, stats in couriers.items():
            self.delivery_backlog.labels(partner).set(backlog.get(partner, 0))
            state = {"closed": 0, "half_open": 1, "open": 2}[stats.breaker]
            self.delivery_breaker.labels(partner).set(3 if stats.disabled else state)

    def read_at_scrape(self, readings: Iterable[StatsReading]) -> None:
        """Export figures that a component keeps itself, read when Prometheus scrapes."""
        self.registry.register(_ScrapeTimeCollector(readings))

    def read_histogram_at_scrape(
        self, name: str, help_text: str, read: Callable[[], LatencyTally | None]
    ) -> None:
        """Export a histogram another process fills (`LatencyTally`), read when scraped."""
        self.registry.register(_TallyCollector(name, help_text, read))

    def summary(self) -> Mapping[str, float]:
        """A flat {sample name{labels}: value} view, for the CLI and the demo's printout."""
        out: dict[str, float] = {}
        for family in self.registry.collect():
            for sample in family.samples:
                if sample.name.endswith(("_created", "_bucket")):
                    continue
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        return out
