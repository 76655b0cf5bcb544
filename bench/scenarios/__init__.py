"""The scenarios `python -m bench` runs, by name."""

from __future__ import annotations

from bench.harness.run import Scenario
from bench.scenarios import (
    availability,
    delivery_isolation,
    end_to_end,
    files,
    ingest_burst,
    orders,
    relay_drain,
    soak,
    workflow,
)

__all__ = ["SCENARIOS"]

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        ingest_burst.SCENARIO,
        relay_drain.SCENARIO,
        end_to_end.SCENARIO,
        soak.SCENARIO,
        delivery_isolation.SCENARIO,
        workflow.SCENARIO,
        files.SCENARIO,
        availability.SCENARIO,
        orders.SCENARIO,
    )
}
