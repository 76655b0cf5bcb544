"""The overview's figures: per partner and per service, read now, as JSON-able rows.

Rates come from the gateway's own Prometheus counters (webhooks accepted, deliveries
delivered), sampled at each read: a counter is free to read at any number of partners, and a
rate over the last minute needs no table scan. The first read after a start has no earlier
sample, so its rates read "-". Backlog, oldest pending and last error come from the store, one
indexed seek each per partner on the page (gateway/store/operator_reads.py).
"""

from __future__ import annotations

import datetime as dt
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec
from prometheus_client import CollectorRegistry

from gateway.store import OperatorReads

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "RATE_WINDOW_S",
    "Overview",
    "ServiceRow",
]

# Partners per overview page: each costs three indexed seeks per poll.
DEFAULT_PAGE_SIZE = 50
# Rates are per minute, measured over up to this long.
RATE_WINDOW_S = 60.0
# Samples kept for the rates; polls closer together than this many per window are dropped.
MAX_SAMPLES = 64
# Exception kinds that mean a deadline passed: the "SLA breaches" column counts them.
SLA_KINDS = frozenset(
    {"late_acknowledgement", "late_shipment", "late_asn", "late_receipt", "promised_date_late"}
)


class ServiceRow(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    state: str  # up, down, idle
    detail: str


_Counts = dict[str, tuple[float, float]]  # partner -> (documents in, documents out)


class Overview:
    """Reads the overview: `partners()` in config order (read each time: a reload changes
    them), paged; `services` a callable per row."""

    def __init__(
        self,
        reads: OperatorReads,
        partners: Callable[[], Sequence[str]],
        registry: CollectorRegistry,
        breakers: Callable[[], Mapping[str, str]],
        services: Callable[[], Any],
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reads = reads
        self._partners = partners
        self._registry = registry
        self._breakers = breakers
        self._services = services
        self.page_size = page_size
        self._clock = clock
        self._samples: deque[tuple[float, _Counts]] = deque(maxlen=MAX_SAMPLES)

    @property
    def pages(self) -> int:
        return max(1, -(-len(self._partners()) // self.page_size))

    async def read(self, page: int = 1) -> dict[str, Any]:
        """The overview's JSON: `partners` (this page), `services`, `as_of`, `page`, `pages`."""
        page = min(max(page, 1), self.pages)
        counts, sla = self._counters()
        rates = self._rates(counts)
        breakers = self._breakers()
        partners = []
        start = (page - 1) * self.page_size
        for partner in self._partners()[start : start + self.page_size]:
            figures = await self._reads.partner_figures(partner)
            in_rate, out_rate = rates.get(partner, (None, None))
            partners.append(
                {
                    "partner": partner,
                    "in_per_min": in_rate,
                    "out_per_min": out_rate,
                    "backlog": figures.backlog,
                    "oldest_pending": _iso(figures.oldest_pending_at),
                    "breaker": breakers.get(partner, "-"),
                    "last_error": (
                        f"{_iso(figures.last_error_at)} {figures.last_error}"
                        if figures.last_error
                        else None
                    ),
                    "sla_breaches": int(sla.get(partner, 0)),
                }
            )
        services = [msgspec.to_builtins(s) for s in await self._services()]
        return {
            "as_of": _iso(time.time()),
            "page": page,
            "pages": self.pages,
            "partners": partners,
            "services": services,
        }

    def _counters(self) -> tuple[_Counts, dict[str, float]]:
        counts: dict[str, list[float]] = {}
        sla: dict[str, float] = {}
        for family in self._registry.collect():
            for s in family.samples:
                if s.name == "gateway_requests_total" and s.labels["status"].startswith("2"):
                    counts.setdefault(s.labels["partner"], [0.0, 0.0])[0] += s.value
                elif s.name == "gateway_deliveries_total" and s.labels["outcome"] == "delivered":
                    counts.setdefault(s.labels["partner"], [0.0, 0.0])[1] += s.value
                elif s.name == "gateway_workflow_exceptions_total" and (
                    s.labels["kind"] in SLA_KINDS
                ):
                    sla[s.labels["partner"]] = sla.get(s.labels["partner"], 0.0) + s.value
        return {p: (c[0], c[1]) for p, c in counts.items()}, sla

    def _rates(self, counts: _Counts) -> dict[str, tuple[float | None, float | None]]:
        now = self._clock()
        while self._samples and now - self._samples[0][0] > RATE_WINDOW_S:
            self._samples.popleft()
        rates: dict[str, tuple[float | None, float | None]] = {}
        if self._samples:
            then, before = self._samples[0]
            span = now - then
            if span > 0:
                for partner in self._partners():
                    new = counts.get(partner, (0.0, 0.0))
                    old = before.get(partner, (0.0, 0.0))
                    rates[partner] = (
                        round((new[0] - old[0]) * 60 / span, 1),
                        round((new[1] - old[1]) * 60 / span, 1),
                    )
        if not self._samples or now - self._samples[-1][0] >= RATE_WINDOW_S / MAX_SAMPLES:
            self._samples.append((now, counts))
        return rates


def _iso(unix: float | None) -> str | None:
    if unix is None:
        return None
    return (
        dt.datetime.fromtimestamp(unix, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )
