"""Every partner's courier, each a supervised service: the outbound side of the gateway."""

from __future__ import annotations

from collections.abc import Mapping

import anyio
from anyio.abc import TaskStatus

from actors.delivery._courier import CourierStatistics, PartnerCourier
from actors.runtime import (
    InMemoryDeadLetters,
    RestartPolicy,
    RuntimeConfig,
    Service,
    Supervisor,
)
from canonical.backoff import backoff_delay

__all__ = ["COURIER_RESTARTS", "OutboundDelivery"]

# A courier crash is a bug (a partner's failures are answers, not crashes): restarted after a
# doubling, jittered wait of 0.5 s up to a minute, as before supervision. One still crashing
# after ten restarts within ten minutes stops, alone: one partner's bug must not stop every
# partner's deliveries (nor loop a process manager's restarts over all of them). It is logged
# at ERROR and counted (`gateway_services_given_up`); its deliveries stay pending in the
# store for the next start.
COURIER_RESTARTS = RestartPolicy(
    max_restarts=10,
    period_s=600.0,
    backoff_initial_s=0.5,
    backoff_max_s=60.0,
    past_budget="stop",
)


class OutboundDelivery:
    """One `PartnerCourier` per partner with an outbound channel; wake them on new work.

    `start(supervisor)` runs each courier as a service of the gateway's supervisor (one-for-one:
    a courier that crashes is restarted on its own, the other partners' deliveries never stop
    for it, and its pending deliveries are safe in the store). `run()` does the same under a
    supervisor of its own, for tools and tests that have none.
    """

    def __init__(
        self, couriers: Mapping[str, PartnerCourier], *, restarts: RestartPolicy = COURIER_RESTARTS
    ) -> None:
        self._couriers = dict(couriers)
        self._restarts = restarts
        self._services: dict[str, Service] = {}

    def wake(self, partner_id: str | None = None) -> None:
        """Wake one partner's courier, or every courier (new deliveries committed)."""
        if partner_id is None:
            for courier in self._couriers.values():
                courier.wake()
        elif partner_id in self._couriers:
            self._couriers[partner_id].wake()

    def statistics(self) -> dict[str, CourierStatistics]:
        """Return each partner's courier counters, keyed by partner id."""
        return {pid: courier.statistics() for pid, courier in self._couriers.items()}

    @property
    def restarts(self) -> int:
        """Return how many times a crashed courier was restarted."""
        return sum(service.restarts for service in self._services.values())

    def start(self, supervisor: Supervisor) -> None:
        """Start every courier as a service of `supervisor`, named `courier/<partner>`."""
        for partner_id, courier in self._couriers.items():
            self._services[partner_id] = supervisor.start_service(
                f"courier/{partner_id}", courier.run, restarts=self._restarts
            )

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run every courier under a supervisor of their own until cancelled."""
        supervisor = Supervisor(
            RuntimeConfig(), dead_letters=InMemoryDeadLetters(), backoff=backoff_delay
        )
        async with supervisor:
            self.start(supervisor)
            task_status.started()
            await anyio.sleep_forever()
