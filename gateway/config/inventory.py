"""The inventory positions: whether they run, how long a gap is held, how events coalesce.

In the file:

    [inventory]
    enabled = true          # the default once the table is written; without it, off
    gap_hold_s = 300.0      # a missing delta is waited for this long, then an exception
    publish_interval_s = 5.0  # at most one availability_changed per position per interval

A gap not filled within `gap_hold_s` raises an `inventory_gap` exception and marks the
position as needing a snapshot (the read model says so); the deltas after the gap stay held
until the missing one or a snapshot arrives.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from gateway.config.base import Base, Seconds

__all__ = ["InventorySettings"]


class InventorySettings(Base, frozen=True):
    """The inventory position actors' switch and bounds (actors/inventory)."""

    # A config file without [inventory] turns them off (GatewayConfig's default); writing the
    # table turns them on.
    enabled: bool = True
    # How long a position waits for a missing sequence number before it raises an exception.
    gap_hold_s: Seconds = 300.0
    # availability_changed events of one position are coalesced within this interval.
    publish_interval_s: Annotated[float, msgspec.Meta(ge=0, le=86_400)] = 5.0
    # Deltas one position holds behind a gap; one more raises the gap at once.
    max_held: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 1_000
    # Delta ids a position remembers (beyond its sequence) to tell a duplicate from a stale one.
    remembered_ids: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 256
    # Committed documents the feeder reads per pass, and at most past per pass.
    feed_batch: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 256
    feed_scan: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 20_000
    # How often the feeder looks for documents, due gaps and due events when nothing woke it.
    feed_poll_s: Seconds = 0.5
    # After a wake-up the feeder waits this long, so one pass takes many commits' rows.
    feed_coalesce_s: Annotated[float, msgspec.Meta(ge=0, le=10)] = 0.05
    # A position with no input for this long leaves memory; its state is in the store.
    passivate_after_s: Seconds = 60.0
