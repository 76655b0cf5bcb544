"""Every partner's courier in one task group: the outbound side of the gateway."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import anyio
from anyio.abc import TaskStatus

from actors.delivery._courier import CourierStatistics, PartnerCourier
from canonical.backoff import backoff_delay
from canonical.trace import log_context

__all__ = ["DEFAULT_RESTART_MAX_S", "DEFAULT_RESTART_MIN_S", "OutboundDelivery"]

log = logging.getLogger(__name__)

# A courier that crashed (a bug) is restarted after a doubling, jittered wait within these.
DEFAULT_RESTART_MIN_S = 0.5
DEFAULT_RESTART_MAX_S = 60.0


class OutboundDelivery:
    """Runs one `PartnerCourier` per partner with an outbound channel; wake them on new work.

    A courier that crashes is logged and restarted on its own (one-for-one): the other
    partners' deliveries never stop for it. Its pending deliveries are safe in the store.
    """

    def __init__(
        self,
        couriers: Mapping[str, PartnerCourier],
        *,
        restart_min_s: float = DEFAULT_RESTART_MIN_S,
        restart_max_s: float = DEFAULT_RESTART_MAX_S,
    ) -> None:
        self._couriers = dict(couriers)
        self._restart_min_s = restart_min_s
        self._restart_max_s = restart_max_s
        self._restarts = 0

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
        return self._restarts

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run every courier until cancelled."""
        async with anyio.create_task_group() as tg:
            for partner_id, courier in self._couriers.items():
                tg.start_soon(self._keep_running, courier, name=f"courier-{partner_id}")
            task_status.started()

    async def _keep_running(self, courier: PartnerCourier) -> None:
        crashes = 0
        while True:
            try:
                await courier.run()
            except Exception:
                crashes += 1
                self._restarts += 1
                delay = backoff_delay(
                    crashes, minimum=self._restart_min_s, maximum=self._restart_max_s
                )
                with log_context(partner=courier.policy.partner_id):
                    log.exception("courier crashed; restarting it in %.1f s", delay)
                await anyio.sleep(delay)
