"""The purchase-order thread: whether it runs, its bounds, and each supplier's tolerances.

In the file:

    [workflow]
    enabled = true

    [workflow.rules]                     # every supplier's, unless overridden below
    quantity_percent = 0.0
    ack_sla_hours = 24.0

    [workflow.partners.acme]             # acme's overrides: any key of [workflow.rules]
    quantity_percent = 5.0

A supplier is known by the party id its documents carry, which is its partner id (the ERP's
subscriptions match `supplier.party_id = "{partner}"`). Changing a deadline (ack_sla_hours,
asn_lead_days, receipt_overdue_days, park_hours) re-times the timers already armed on the next
start, by the difference: armed under a 48 h SLA, restarted under 24 h, an acknowledgement is
due 24 h earlier (and fires at once if that is past). The gateway logs each supplier it
re-timed. The checks against the rest of the file (partners named, [erp] publishing the
orders) are in gateway/config/rules.py.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from gateway.config.base import Base, Seconds
from gateway.config.partners import PARTNER_ID_PATTERN

__all__ = ["RuleOverrides", "RuleSettings", "WorkflowSettings"]

Percent = Annotated[float, msgspec.Meta(ge=0, le=1000)]
Units = Annotated[float, msgspec.Meta(ge=0)]
Days = Annotated[int, msgspec.Meta(ge=0, le=3650)]
Hours = Annotated[float, msgspec.Meta(gt=0, le=24 * 3650)]


class RuleSettings(Base, frozen=True):
    """What the rules let pass and when the thread chases (actors.workflow.Tolerances)."""

    # An acknowledged, shipped or invoiced quantity may differ by the larger of these two.
    quantity_percent: Percent = 0.0
    quantity_units: Units = 0.0
    # Days a promised date may fall after the requested date.
    promised_date_slack_days: Days = 0
    # A confirmed or invoiced unit price may differ from the order's by this percent.
    price_percent: Percent = 0.0
    # Hours after the order reached the supplier by which it must acknowledge.
    ack_sla_hours: Hours = 24.0
    # The ASN is due this many days before the earliest requested date.
    asn_lead_days: Days = 1
    # The receipt is due this many days after the expected delivery (else requested) date.
    receipt_overdue_days: Days = 2
    # Hours an input waits for an order the gateway has not seen before it is an exception.
    park_hours: Hours = 24.0


class RuleOverrides(Base, frozen=True):
    """One supplier's differences from `[workflow.rules]`; a key left out keeps the default."""

    quantity_percent: Percent | None = None
    quantity_units: Units | None = None
    promised_date_slack_days: Days | None = None
    price_percent: Percent | None = None
    ack_sla_hours: Hours | None = None
    asn_lead_days: Days | None = None
    receipt_overdue_days: Days | None = None
    park_hours: Hours | None = None


class WorkflowSettings(Base, frozen=True):
    """The purchase-order thread's switch, bounds and rules."""

    # Off: no thread, feeder or timer runs; documents still flow as before. Needs [erp]
    # publish_events = true; a file without [workflow] has it default to that setting instead.
    enabled: bool = True
    # Committed inputs read per pass of the feeder (their threads apply them concurrently).
    feed_batch: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 256
    # How often the feeder looks for committed inputs when nothing woke it.
    feed_poll_s: Seconds = 0.5
    # After a wake-up the feeder waits this long, so one pass takes many commits' rows (a
    # burst of webhooks wakes it on every group commit; each pass costs reads).
    feed_coalesce_s: Annotated[float, msgspec.Meta(ge=0, le=10)] = 0.05
    # Outbox rows (or delivery attempts) one pass reads past at most: bounds a pass's work
    # when the stream is mostly documents no thread takes.
    feed_scan: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 20_000
    # The timer service re-reads the earliest due time at least this often (a clock jump).
    timer_max_sleep_s: Seconds = 60.0
    # A thread with no input for this long leaves memory; its state is in the store.
    passivate_after_s: Seconds = 60.0
    rules: RuleSettings = RuleSettings()
    partners: dict[Annotated[str, msgspec.Meta(pattern=PARTNER_ID_PATTERN)], RuleOverrides] = {}

    def rules_for(self, partner_id: str) -> RuleSettings:
        """The rules of one supplier: the defaults with its overrides laid over them."""
        overrides = self.partners.get(partner_id)
        if overrides is None:
            return self.rules
        changed = {k: v for k, v in msgspec.structs.asdict(overrides).items() if v is not None}
        return msgspec.structs.replace(self.rules, **changed)
