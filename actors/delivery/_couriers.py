"""Every partner's courier, each a supervised service: the outbound side of the gateway."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from functools import partial

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
    supervisor of its own, for tools and tests that have none. `adopt` swaps the couriers of
    partners whose configuration changed (a reload) while the others run on.
    """

    def __init__(
        self, couriers: Mapping[str, PartnerCourier], *, restarts: RestartPolicy = COURIER_RESTARTS
    ) -> None:
        self._couriers = dict(couriers)
        self._restarts = restarts
        self._services: dict[str, Service] = {}
        self._supervisor: Supervisor | None = None
        # Each partner's last retired courier still running (its attempts in flight), which
        # the partner's next courier waits for; and which courier each new one waits for.
        self._retiring: dict[str, PartnerCourier] = {}
        self._waits_for: dict[PartnerCourier, PartnerCourier] = {}
        self._past_restarts = 0  # of the services of retired couriers

    def wake(self, partner_id: str | None = None) -> None:
        """Wake one partner's courier, or every courier (new deliveries committed)."""
        if partner_id is None:
            for courier in self._couriers.values():
                courier.wake()
        elif partner_id in self._couriers:
            self._couriers[partner_id].wake()

    def statistics(self) -> dict[str, CourierStatistics]:
        """Return each partner's courier counters, keyed by partner id.

        While a partner's new courier waits for the retired one to end, the retired one's.
        """
        return {pid: self._running(courier).statistics() for pid, courier in self._couriers.items()}

    def _running(self, courier: PartnerCourier) -> PartnerCourier:
        """The courier actually running for `courier`'s partner: itself, or the one it waits for."""
        while courier in self._waits_for:
            courier = self._waits_for[courier]
        return courier

    @property
    def restarts(self) -> int:
        """Return how many times a crashed courier was restarted."""
        running = sum(service.restarts for service in self._services.values())
        return self._past_restarts + running

    def start(self, supervisor: Supervisor) -> None:
        """Start every courier as a service of `supervisor`, named `courier/<partner>`."""
        self._supervisor = supervisor
        for partner_id, courier in self._couriers.items():
            self._services[partner_id] = supervisor.start_service(
                f"courier/{partner_id}", courier.run, restarts=self._restarts
            )

    def adopt(self, new: OutboundDelivery, changed: Collection[str]) -> None:
        """Swap in the couriers of `new` for the partners in `changed`; the rest run on.

        A reload calls it, with no await between it and the rest of the swap: `new` is built by
        `gateway.outbound.build_outbound` from the new config, with the same store, egress
        client, clock and `on_attempt` (building couriers opens no connection and starts
        nothing); `changed` holds the ids of the partners whose `PartnerConfig` differs between
        the two configs, and the ids added and removed.

        - A partner in `changed`, or absent from `new`: its running courier is retired (no new
          attempt; those in flight finish, each within its timeout, on the old config).
        - A partner in `new` that is in `changed` or has no courier running: `new`'s courier
          starts, as a service of the same supervisor, once the retired one has ended, so no
          delivery is attempted twice at once. Its deliveries wait in the store meanwhile.
        - Any other partner keeps its courier, untouched; `new`'s one for it is dropped unused.

        `wake()` reaches the new couriers from now on; `statistics()` shows a retired courier's
        until its replacement runs. Call it only after `start()`.
        """
        supervisor = self._supervisor
        if supervisor is None:
            raise RuntimeError("adopt() before start(): the couriers have no supervisor")
        self._retiring = {p: c for p, c in self._retiring.items() if not c.retired}
        for partner_id in list(self._couriers):
            if partner_id in changed or partner_id not in new._couriers:
                self._retire(partner_id)
        for partner_id, courier in new._couriers.items():
            if partner_id in self._couriers:
                continue
            self._couriers[partner_id] = courier
            predecessor = self._retiring.get(partner_id)
            if predecessor is not None:
                self._waits_for[courier] = predecessor
            self._services[partner_id] = supervisor.start_service(
                f"courier/{partner_id}",
                partial(self._succeed, predecessor, courier),
                restarts=new._restarts,
            )

    def _retire(self, partner_id: str) -> None:
        courier = self._couriers.pop(partner_id)
        service = self._services.pop(partner_id)
        self._past_restarts += service.restarts
        courier.retire()
        if service.running:  # one given up past its budget never runs again: none to wait for
            self._retiring[partner_id] = courier

    async def _succeed(self, predecessor: PartnerCourier | None, courier: PartnerCourier) -> None:
        """Run `courier` once its retired predecessor, if any, has ended."""
        if predecessor is not None:
            await predecessor.wait_retired()
            self._waits_for.pop(courier, None)
        await courier.run()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run every courier under a supervisor of their own until cancelled."""
        supervisor = Supervisor(
            RuntimeConfig(), dead_letters=InMemoryDeadLetters(), backoff=backoff_delay
        )
        async with supervisor:
            self.start(supervisor)
            task_status.started()
            await anyio.sleep_forever()
