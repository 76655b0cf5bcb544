"""The outbox relay's wiring, called inside the store's writer process (gateway/store/child.py).

The process that commits the outbox rows also publishes them: it has just written them, it owns
the connection that marks them published, and the relay's work (frames, socket writes, confirm
bookkeeping, ~20 us a message) runs on its own core instead of the event loop's that serves
the webhooks. `build_relay` is handed to the store bound to the config (`functools.partial`),
pickled to the writer process, and called there with the process's own outbox source. The store
knows what it gets only as a `gateway.store.wire.HostedRelay`; `relay_report` reads the report
back in the gateway's process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from typing import NamedTuple, cast

import anyio
from msgspec.structs import replace

from actors.relay import OutboxRelay, OutboxSource, RelayStatistics
from canonical.backoff import backoff_delay
from gateway.config.settings import AmqpSettings
from gateway.metrics import LatencyTally
from gateway.store import Store
from gateway.store.wire import FlushOutcome
from protocols.amqp.publisher import ConfirmedPublisher, connect
from protocols.amqp.topology import declare_topology

__all__ = ["HostedOutboxRelay", "RelayReport", "build_relay", "relay_report"]

log = logging.getLogger("gateway.relay")

_RESTART_MIN_S = 1.0
_RESTART_MAX_S = 30.0


class RelayReport(NamedTuple):
    """The relay's state as the writer process last reported it."""

    statistics: RelayStatistics
    confirm_latency: LatencyTally
    # The last error that stopped the relay (it is restarted), or None.
    error: str | None


def build_relay(amqp: AmqpSettings, source: OutboxSource) -> HostedOutboxRelay:
    """The relay of `amqp`'s broker and exchanges, draining `source`."""
    return HostedOutboxRelay(
        lambda on_confirm: OutboxRelay(
            source,
            partial(_connect_publisher, amqp),
            batch_size=amqp.relay_batch_size,
            reconnect_min=amqp.reconnect_min_s,
            reconnect_max=amqp.reconnect_max_s,
            on_confirm=on_confirm,
        )
    )


def relay_report(store: Store) -> RelayReport | None:
    """The report of the relay `build_relay` gave `store`, as last polled; None before one.

    `connected` reads False while the writer process cannot be reached.
    """
    report = cast("RelayReport | None", store.relay_report())
    if report is None or store.relay_reachable or not report.statistics.connected:
        return report
    return report._replace(statistics=replace(report.statistics, connected=False))


class HostedOutboxRelay:
    """Runs the relay in the writer process, restarting it after an unexpected error.

    A relay that stops with an unexpected error (a declare the broker refuses) is logged and
    started again after a pause; the parent's readiness check sees it disconnected meanwhile.
    """

    def __init__(self, build: Callable[[Callable[[float], None]], OutboxRelay]) -> None:
        self._confirm_latency = LatencyTally()
        self._relay = build(self._confirm_latency.observe)
        self._error: str | None = None

    async def run(self) -> None:
        failures = 0
        while True:
            started = time.monotonic()
            try:
                await self._relay.run()
            except Exception as exc:
                # A relay that ran for a while before failing starts over from the shortest
                # pause; one that fails again at once waits longer each time.
                failures = 1 if time.monotonic() - started > _RESTART_MAX_S else failures + 1
                delay = backoff_delay(failures, minimum=_RESTART_MIN_S, maximum=_RESTART_MAX_S)
                self._error = repr(exc)
                log.exception("the outbox relay stopped; starting it again in %.1f s", delay)
                await anyio.sleep(delay)

    def wake(self) -> None:
        self._relay.wake()

    async def flush(self, within_s: float) -> FlushOutcome:
        """Publish what is pending for up to `within_s` seconds.

        "unconnected" at once without a broker connection: nothing could go out, and the rows
        stay in the store for the next start.
        """
        if not self._relay.statistics().connected:
            return "unconnected"
        with anyio.move_on_after(within_s):
            await self._relay.flush()
            return "flushed"
        return "pending"

    def report(self) -> RelayReport:
        return RelayReport(self._relay.statistics(), self._confirm_latency, self._error)


async def _connect_publisher(amqp: AmqpSettings) -> ConfirmedPublisher:
    return await connect(
        amqp.url.reveal(),
        exchange=amqp.events_exchange,
        window=amqp.confirm_window,
        declare=partial(
            declare_topology,
            events_exchange=amqp.events_exchange,
            dead_letter_exchange=amqp.dead_letter_exchange,
        ),
    )
