"""Inventory positions: one actor per (SKU, location) applying deltas and snapshots in order.

The rules (`rules.apply`) are pure; `actor.InventoryPositionActor` commits each step through
the `ports.PositionLedger` the gateway implements; `feeder.InventoryFeeder` hands the actors
what the gateway committed and tells them when a gap or a coalesced event is due.
"""
