"""The bounds and budgets of the actor runtime, each a named value with the default we run on."""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = ["RestartPolicy", "RuntimeConfig"]


class RestartPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One child's restart intensity and pacing (OTP): a service may need its own.

    More than `max_restarts` restarts within `period_s` escalates; the wait before a restart
    is the backoff rule between `backoff_initial_s` and `backoff_max_s`, by restarts counted.
    `past_budget = "stop"` ends only that child instead (a service among peers that must not
    all stop for one: one partner's courier); it is counted in `given_up` and logged at ERROR.
    """

    max_restarts: int
    period_s: float
    backoff_initial_s: float
    backoff_max_s: float
    past_budget: Literal["escalate", "stop"] = "escalate"

    def __post_init__(self) -> None:
        if self.max_restarts < 0:
            raise ValueError("max_restarts must not be negative")
        if self.period_s <= 0:
            raise ValueError("period_s must be positive")
        if not 0 <= self.backoff_initial_s <= self.backoff_max_s:
            raise ValueError("backoff_initial_s must be between 0 and backoff_max_s")


class RuntimeConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Mailbox bound, ask timeout, passivation, restart budget, poison threshold, shutdown.

    Field names match the gateway's `RuntimeSettings`, so the composition root can pass those
    fields straight through; the backoff fields are ours alone.

    Restart budget and poison threshold are made to agree: a message that crashes its actor
    `poison_threshold` times is dead-lettered, and the restarts it caused are then refunded but
    one (see `Supervisor`). At its peak a lone poison message holds `poison_threshold - 1`
    restarts of the budget, so it must fit: `poison_threshold <= max_restarts + 1`. Otherwise
    the first bad message would escalate before it could ever be set aside.
    """

    mailbox_size: int = 1024
    ask_timeout_s: float = 10.0
    passivate_after_s: float = 300.0
    # One-for-one restart intensity (OTP): more than max_restarts within restart_period_s.
    max_restarts: int = 5
    restart_period_s: float = 60.0
    poison_threshold: int = 3
    # Restart delay: backoff_initial_s doubled per recent crash, never above backoff_max_s.
    backoff_initial_s: float = 0.05
    backoff_max_s: float = 5.0
    shutdown_deadline_s: float = 10.0

    def __post_init__(self) -> None:
        # ValueError (not assert, stripped under -O): msgspec reports it with the field's path.
        if self.mailbox_size < 1:
            raise ValueError("mailbox_size must be at least 1")
        if self.max_restarts < 0:
            raise ValueError("max_restarts must not be negative")
        if self.poison_threshold < 1:
            raise ValueError("poison_threshold must be at least 1")
        if self.poison_threshold > self.max_restarts + 1:
            raise ValueError(
                f"poison_threshold ({self.poison_threshold}) must be at most max_restarts + 1"
                f" ({self.max_restarts + 1}): a poison message would escalate before it is"
                " dead-lettered"
            )
        for name in (
            "ask_timeout_s",
            "passivate_after_s",
            "restart_period_s",
            "backoff_max_s",
            "shutdown_deadline_s",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if not 0 <= self.backoff_initial_s <= self.backoff_max_s:
            raise ValueError("backoff_initial_s must be between 0 and backoff_max_s")

    def restart_policy(self) -> RestartPolicy:
        """The restart intensity and pacing every actor and service gets unless given its own."""
        return RestartPolicy(
            max_restarts=self.max_restarts,
            period_s=self.restart_period_s,
            backoff_initial_s=self.backoff_initial_s,
            backoff_max_s=self.backoff_max_s,
        )
