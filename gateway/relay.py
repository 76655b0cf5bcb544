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
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, NamedTuple, cast

import anyio
from msgspec.structs import replace

from actors.relay import OutboxRelay, OutboxSource, RelayStatistics
from actors.runtime import (
    Escalation,
    InMemoryDeadLetters,
    RestartPolicy,
    RuntimeConfig,
    Service,
    Supervisor,
)
from canonical.backoff import backoff_delay
from canonical.tracing import Tracer
from gateway.config.settings import AmqpSettings
from gateway.metrics import LatencyTally
from gateway.store import Store
from gateway.store.wire import FlushOutcome
from protocols.amqp.publisher import ConfirmedPublisher, connect
from protocols.amqp.topology import declare_topology

__all__ = ["RELAY_RESTARTS", "HostedOutboxRelay", "RelayReport", "build_relay", "relay_report"]

log = logging.getLogger("gateway.relay")

# A relay that stops with an unexpected error (a declare the broker refuses: the exchange
# exists with another type) is started again after 1 s, doubling up to 30 s, as before
# supervision, so an operator has minutes to fix the broker while webhooks are still taken.
# Twelve restarts within fifteen minutes (about five minutes of failing without a break) and
# the relay gives up: the gateway stops with the error; the rows wait in the outbox.
RELAY_RESTARTS = RestartPolicy(
    max_restarts=12, period_s=900.0, backoff_initial_s=1.0, backoff_max_s=30.0
)


class RelayReport(NamedTuple):
    """The relay's state as the writer process last reported it."""

    statistics: RelayStatistics
    confirm_latency: LatencyTally
    # The last error that stopped the relay (it is restarted), or None.
    error: str | None
    # Restarts of the relay after such errors, counted by its supervisor.
    restarts: int = 0
    # Why the relay gave up (restarts past its budget): the gateway then stops. None if not.
    gave_up: str | None = None


def build_relay(
    amqp: AmqpSettings,
    source: OutboxSource,
    tracer: Tracer | None = None,
    *,
    restarts: RestartPolicy = RELAY_RESTARTS,
) -> HostedOutboxRelay:
    """The relay of `amqp`'s broker and exchanges, draining `source`, tracing with `tracer`."""
    return HostedOutboxRelay(
        restarts,
        lambda on_confirm: OutboxRelay(
            source,
            partial(_connect_publisher, amqp),
            batch_size=amqp.relay_batch_size,
            reconnect_min=amqp.reconnect_min_s,
            reconnect_max=amqp.reconnect_max_s,
            on_confirm=on_confirm,
            tracer=tracer,
        ),
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
    """Runs the relay in the writer process as the one service of a supervisor of its own.

    The writer is another process, so the gateway's supervisor cannot hold the relay's task;
    the same runtime does it here: a relay that stops with an unexpected error is restarted
    with the gateway's backoff rule within `restarts`, and the parent's readiness check sees
    it disconnected meanwhile. Past the budget the relay gives up: `report().gave_up` says
    why, and the gateway, which polls the report, escalates and stops (`gateway.app`).
    """

    def __init__(
        self,
        restarts: RestartPolicy,
        build: Callable[[Callable[[float], None]], OutboxRelay],
    ) -> None:
        self._restarts = restarts
        self._confirm_latency = LatencyTally()
        self._relay = build(self._confirm_latency.observe)
        self._service: Service | None = None
        self._gave_up: str | None = None

    async def run(self) -> None:
        """Relay until cancelled, or until the relay gave up (then the rows stay pending)."""
        supervisor = Supervisor(
            RuntimeConfig(), dead_letters=InMemoryDeadLetters(), backoff=backoff_delay
        )
        try:
            async with supervisor:
                self._service = supervisor.start_service(
                    "relay", self._relay.run, restarts=self._restarts
                )
                await anyio.sleep_forever()
        except* Escalation as group:
            self._gave_up = str(group.exceptions[0])
            log.critical("the outbox relay gave up: %s", self._gave_up)

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
        service = self._service
        error = None if service is None or service.last_error is None else service.last_error
        return RelayReport(
            self._relay.statistics(),
            self._confirm_latency,
            None if error is None else repr(error),
            restarts=0 if service is None else service.restarts,
            gave_up=self._gave_up,
        )


if TYPE_CHECKING:
    from gateway.store.child import _Outbox

    def _outbox_is_the_relays_source(outbox: _Outbox) -> OutboxSource:
        """The writer's outbox reaches `build_relay` untyped (pickled factory): checked here."""
        return outbox


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
