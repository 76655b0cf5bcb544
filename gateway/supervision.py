"""The gateway's supervision wiring: the runtime's config and each service's restart budget.

One mechanism restarts what crashes in the gateway: the actor runtime's `Supervisor`, paced by
the one backoff rule (`canonical.backoff`). Workflow threads are its actors; couriers, the ERP
consumers and the relay's watch its services; the relay itself is the one service of a
supervisor in the writer process. This module maps `[runtime]` onto their budgets.
"""

from __future__ import annotations

import msgspec

from actors.delivery import COURIER_RESTARTS
from actors.runtime import RestartPolicy, RuntimeConfig
from gateway.config import RuntimeSettings
from gateway.relay import RELAY_RESTARTS

__all__ = ["courier_restarts", "relay_restarts", "runtime_config"]

# `[runtime]` keys that are budgets of particular services, not of the runtime as a whole.
_SERVICE_KEYS = frozenset(
    {
        "courier_max_restarts",
        "courier_restart_period_s",
        "relay_max_restarts",
        "relay_restart_period_s",
    }
)


def runtime_config(settings: RuntimeSettings) -> RuntimeConfig:
    """The runtime's config: `[runtime]` but for the services' own budgets."""
    fields = msgspec.structs.asdict(settings)
    return RuntimeConfig(**{k: v for k, v in fields.items() if k not in _SERVICE_KEYS})


def courier_restarts(settings: RuntimeSettings) -> RestartPolicy:
    """Each courier's budget; its pacing stays the couriers' own (0.5 s up to a minute)."""
    return msgspec.structs.replace(
        COURIER_RESTARTS,
        max_restarts=settings.courier_max_restarts,
        period_s=settings.courier_restart_period_s,
    )


def relay_restarts(settings: RuntimeSettings) -> RestartPolicy:
    """The relay's budget in the writer process; its pacing stays the relay's (1 s up to 30 s)."""
    return msgspec.structs.replace(
        RELAY_RESTARTS,
        max_restarts=settings.relay_max_restarts,
        period_s=settings.relay_restart_period_s,
    )
