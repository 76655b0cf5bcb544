"""The availability cache's rules: bounded by rows, kept in step with writes, never filled by
a read that a write overtook."""

from __future__ import annotations

from gateway.store.availability_cache import AvailabilityCache


def test_it_holds_at_most_max_rows_dropping_the_oldest_filled() -> None:
    cache = AvailabilityCache(max_rows=3)
    cache.fill([("A", (("A", "E", b"1"), ("A", "W", b"2")))], cache.epoch)
    cache.fill([("B", ())], cache.epoch)  # an unknown SKU counts as one row
    cache.fill([("C", (("C", "E", b"3"),))], cache.epoch)

    assert cache.get("A") is None
    assert (cache.get("B"), cache.get("C")) == ((), (("C", "E", b"3"),))
    assert len(cache) == 2


def test_an_applied_write_replaces_the_row_of_a_held_sku_and_skips_others() -> None:
    cache = AvailabilityCache()
    cache.fill([("A", (("A", "E", b"old"), ("A", "W", b"w")))], cache.epoch)
    cache.applied("A", "E", b"new")
    cache.applied("A", "N", b"north")
    cache.applied("Z", "E", b"z")

    assert cache.get("A") == (("A", "E", b"new"), ("A", "N", b"north"), ("A", "W", b"w"))
    assert cache.get("Z") is None
    assert len(cache) == 3


def test_a_read_overtaken_by_a_write_does_not_fill() -> None:
    cache = AvailabilityCache()
    epoch = cache.epoch  # a read starts on the connection's thread
    cache.applied("A", "E", b"new")  # a write ends meanwhile; A was not held
    cache.fill([("A", (("A", "E", b"old"),))], epoch)

    assert cache.get("A") is None


def test_a_write_of_unknown_outcome_forgets_the_sku() -> None:
    cache = AvailabilityCache()
    cache.fill([("A", (("A", "E", b"1"),))], cache.epoch)
    cache.forget("A")

    assert cache.get("A") is None
    assert len(cache) == 0


def test_zero_rows_turns_it_off() -> None:
    cache = AvailabilityCache(max_rows=0)
    cache.fill([("A", (("A", "E", b"1"),))], cache.epoch)

    assert cache.get("A") is None
