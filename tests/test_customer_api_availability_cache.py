"""The availability cache's rules: bounded by rows, kept in step with writes, never filled by
a read that a write overtook."""

from __future__ import annotations

import datetime as dt

from gateway.store.availability_cache import AvailabilityCache, AvailabilityJson, row

T0 = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)


def at(sku: str, location: str, hours: int = 0) -> AvailabilityJson:
    stamp = (T0 + dt.timedelta(hours=hours)).isoformat()
    return row(sku, location, f'{{"sku":"{sku}","as_of":"{stamp}"}}'.encode())


def test_it_holds_at_most_max_rows_dropping_the_oldest_filled() -> None:
    cache = AvailabilityCache(max_rows=3)
    cache.fill([("A", (at("A", "E"), at("A", "W")))], cache.epoch)
    cache.fill([("B", ())], cache.epoch)  # an unknown SKU counts as one row
    cache.fill([("C", (at("C", "E"),))], cache.epoch)

    assert cache.get("A") is None
    assert (cache.get("B"), cache.get("C")) == ((), (at("C", "E"),))
    assert len(cache) == 2


def test_an_applied_write_replaces_the_row_of_a_held_sku_and_skips_others() -> None:
    cache = AvailabilityCache()
    cache.fill([("A", (at("A", "E"), at("A", "W")))], cache.epoch)
    cache.applied("A", "E", at("A", "E", hours=1)[3])
    cache.applied("A", "N", at("A", "N")[3])
    cache.applied("Z", "E", at("Z", "E")[3])

    assert cache.get("A") == (at("A", "E", hours=1), at("A", "N"), at("A", "W"))
    assert cache.get("A")[0][2] == T0 + dt.timedelta(hours=1)  # type: ignore[index]
    assert cache.get("Z") is None
    assert len(cache) == 3


def test_a_read_overtaken_by_a_write_does_not_fill() -> None:
    cache = AvailabilityCache()
    epoch = cache.epoch  # a read starts on the connection's thread
    cache.applied("A", "E", at("A", "E", hours=1)[3])  # a write ends meanwhile; A not held
    cache.fill([("A", (at("A", "E"),))], epoch)

    assert cache.get("A") is None


def test_a_write_of_unknown_outcome_forgets_the_sku() -> None:
    cache = AvailabilityCache()
    cache.fill([("A", (at("A", "E"),))], cache.epoch)
    cache.forget("A")

    assert cache.get("A") is None
    assert len(cache) == 0


def test_zero_rows_turns_it_off() -> None:
    cache = AvailabilityCache(max_rows=0)
    cache.fill([("A", (at("A", "E"),))], cache.epoch)

    assert cache.get("A") is None
