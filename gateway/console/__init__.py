"""The operator console: server-rendered pages under `/console` on the admin listener.

`build_console` wires it from the running gateway's parts; `gateway.admin.guarded` mounts what
it returns beside the admin API. Pages, routes and the login rules: gateway/console/pages.py
and gateway/console/guard.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from prometheus_client import CollectorRegistry

from gateway.console.guard import ConsoleGuard
from gateway.console.overview import Overview, ServiceRow
from gateway.console.pages import ConsoleApp
from gateway.relay import relay_report
from gateway.store import Store
from protocols.http.asgi import ASGIApp

__all__ = ["DEFAULT_POLL_MS", "ConsoleGuard", "build_console"]

# How often the overview redraws itself; each poll is three indexed reads per partner shown.
DEFAULT_POLL_MS = 2000


class _Couriers(Protocol):
    def statistics(self) -> Mapping[str, Any]: ...


class _Consumer(Protocol):
    @property
    def spec(self) -> Any: ...

    def statistics(self) -> Any: ...


def build_console(
    store: Store,
    admin_api: ASGIApp,
    *,
    partners: Callable[[], Sequence[str]],
    registry: CollectorRegistry,
    couriers: _Couriers | None,
    erp_consumers: Sequence[_Consumer],
    token: bytes | None,
    allowed_hosts: tuple[str, ...],
    poll_ms: int = DEFAULT_POLL_MS,
) -> ASGIApp:
    """The console behind its guard; `admin_api` is the admin app without its guard;
    `partners()` the partner ids now (a reload changes them)."""
    reads = store.operator_reads

    def breakers() -> dict[str, str]:
        if couriers is None:
            return {}
        return {
            partner: "disabled" if stats.disabled else stats.breaker
            for partner, stats in couriers.statistics().items()
        }

    async def services() -> list[ServiceRow]:
        pending, oldest = await store.outbox_backlog()
        report = relay_report(store)
        connected = report is not None and report.statistics.connected
        rows = [
            ServiceRow(
                name="relay",
                state="up" if connected else "down",
                detail=f"outbox pending {pending}, oldest "
                + ("-" if oldest is None else f"{oldest:.1f} s"),
            )
        ]
        for consumer in erp_consumers:
            stats = consumer.statistics()
            rows.append(
                ServiceRow(
                    name=f"ERP consumer {consumer.spec.queue}",
                    state="up" if stats.consuming else "down",
                    detail=f"delivered {stats.delivered}, acked {stats.acked}, "
                    f"rejected {stats.rejected}",
                )
            )
        dead = {
            s.labels["source"]: int(s.value)
            for family in registry.collect()
            for s in family.samples
            if s.name == "gateway_dead_letters"
        }
        rows.append(
            ServiceRow(
                name="store",
                state="up",
                detail=f"writer pid {store.writer_pid}, dead letters "
                + (", ".join(f"{k} {v}" for k, v in sorted(dead.items())) or "0"),
            )
        )
        return rows

    overview = Overview(reads, partners, registry, breakers, services)
    app = ConsoleApp(store, reads, overview, admin_api, partners, poll_ms=poll_ms)
    return ConsoleGuard(app, token=token, allowed_hosts=allowed_hosts)
