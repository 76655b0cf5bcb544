"""availability: the customer API's availability reads beside an HTTP ceiling, in one run.

wrk (closed loop, `--connections`, `--threads`, `--duration`) asks for `SKUS_PER_REQUEST`
random SKUs of a read model of `SKUS` SKUs at two locations, with the account's API key:
- `customer-api`: the customer API app (protocols/http/api: key check, starlette router,
  account scoping, problem+json mapping) over the gateway's own read model, a real `Store`'s
  `store.inventory` (gateway/store/inventory.py: rows sent as stored, read in the event loop),
  served the way the gateway serves it (protocols.http.server.serve, uvloop); the read
  model's 20,000 rows fit the ledger's cache (`AvailabilityCache`, 50,000 rows by default);
- `customer-api-uncached`: the same with the ledger's availability cache off (every SKU read
  from SQLite in the event loop): what a read model larger than the cache costs;
- `customer-api-decoded`: the same app and store, the rows read as the reader did before
  (aiosqlite's thread, each row decoded to `Availability` and encoded again): the path before;
- `http-ceiling-get`: an ASGI app on the same server answering every GET with a fixed body of
  the same size: what serving alone costs.
The read model's rows are written by the inventory positions' own write (`apply_step`, one
`PositionStep` per SKU and location) into a store file the systems open. Target:
`customer-api` >= 0.5 of the ceiling's requests/s; p99 reported. Every system runs at once
and the load alternates between them in `ROUNDS` rounds; each system's best round counts
(its p50/p99 are that round's). With `--profile-hz`, py-spy samples each system in the first
round and the run's notes give the top functions.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sqlite3
import sys
from collections.abc import Sequence
from contextlib import AsyncExitStack
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import msgspec

from bench.harness.probes import port_open
from bench.harness.processes import service
from bench.harness.profile import Profile, record
from bench.harness.results import SystemResult, ratio
from bench.harness.run import BenchRun, Scenario
from bench.harness.wrk import WRK_OVERRUN_S, parse_wrk_output, wrk_binary
from canonical.availability import Availability
from gateway.localbroker import free_port
from gateway.store.availability_cache import AvailabilityCache
from gateway.store.inventory import AvailabilityJson, PositionStep, apply_step

__all__ = ["SCENARIO"]

HOST = "127.0.0.1"
SKUS = 10_000
SKUS_PER_REQUEST = 10
LOCATIONS = ("DC-EAST", "DC-WEST")
API_KEY = "bench-customer-api-key-0123456789abcdef"
SCRIPT = Path(__file__).resolve().parents[1] / "harness" / "availability.lua"
TARGET = 0.5
# Rounds of load, the systems alternating in each; each system's best round counts.
ROUNDS = 3
QUICK_ROUNDS = 1
# py-spy's wait past wrk's end for its summary, at most.
PROFILE_GRACE_S = 30.0
COLUMNS = ("requests_per_s", "p50_ms", "p99_ms", "p99.9_ms", "errors", "peak_rss_mib")
SYSTEMS = {
    "customer-api": ("gateway", "customer API availability over the store's read model"),
    "customer-api-uncached": (
        "gateway",
        "the same with the availability cache off: every SKU from SQLite",
    ),
    "customer-api-decoded": (
        "gateway",
        "the same, rows decoded and encoded again on aiosqlite's thread (the path before)",
    ),
    "http-ceiling-get": ("ceiling", "fixed answer of the same size on the same server"),
}
AS_OF = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)


def _row(n: int, location: str) -> Availability:
    on_hand, allocated = Decimal(n % 500), Decimal(n % 7)
    return Availability(
        sku=f"SKU-{n:06d}",
        location_id=location,
        uom="EA",
        on_hand=on_hand,
        allocated=allocated,
        in_transit=Decimal(0),
        quarantined=Decimal(0),
        available=on_hand - allocated,
        as_of=AS_OF,
    )


def seed(path: Path) -> None:
    """Write the read model through the positions' own write: SKUS SKUs at each location."""
    from gateway.store import schema

    with sqlite3.connect(path, isolation_level=None) as db:
        db.execute("PRAGMA journal_mode = WAL")
        schema.migrate(db)
        db.execute("BEGIN")
        for n in range(SKUS):
            for location in LOCATIONS:
                step = PositionStep(
                    sku=f"SKU-{n:06d}",
                    location_id=location,
                    expected_version=0,
                    message_id=f"bench-{n}-{location}",
                    state=b"{}",
                    label="in_step",
                    due_at=None,
                    availability=msgspec.json.encode(_row(n, location)),
                )
                outcome, _ = apply_step(step, db, AS_OF.timestamp())
                assert outcome == "applied", outcome
        db.execute("COMMIT")
    db.close()


class DecodedReadModel:
    """The reader as it was: rows decoded to `Availability` on aiosqlite's thread, then
    encoded again for the answer."""

    def __init__(self, ledger: Any) -> None:
        self.ledger = ledger

    async def availability_json(
        self, skus: Sequence[str], location_id: str | None
    ) -> list[AvailabilityJson]:
        rows = await self.ledger.availability(skus, location_id)
        return [(a.sku, a.location_id, a.as_of, msgspec.json.encode(a)) for a in rows]


class _NoOrders:
    async def submit(self, *args: object) -> Any:
        raise RuntimeError("the bench reads availability only")

    async def status(self, *args: object) -> None:
        return None


async def _serve(system: str, port: int, db_path: Path) -> None:
    from gateway.store import Store
    from protocols.http.api import Account, Accounts, ApiLimits, customer_api, key_digest
    from protocols.http.server import serve

    async with Store(db_path, synchronous="NORMAL") as store:
        app: Any
        if system == "http-ceiling-get":
            sample = [_row(n, loc) for n in range(SKUS_PER_REQUEST) for loc in LOCATIONS]
            body = msgspec.json.encode({"as_of": AS_OF, "items": sample, "unknown": []})

            async def ceiling(scope: Any, receive: Any, send: Any) -> None:
                if scope["type"] != "http":
                    return
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})

            app = ceiling
        else:
            account = Account(
                id="bench-customer",
                key_digests=(key_digest(API_KEY),),
                locations=frozenset(LOCATIONS),
                ship_tos=frozenset({"STORE-1"}),
            )
            if system == "customer-api-uncached":
                store.inventory.cache = AvailabilityCache(max_rows=0)
            source: Any = (
                DecodedReadModel(store.inventory)
                if system == "customer-api-decoded"
                else store.inventory
            )
            app = customer_api(Accounts([account], lambda _: 0.0), source, _NoOrders(), ApiLimits())
        await serve(app, host=HOST, port=port, backlog=2048)


async def _profile(pid: int, seconds: float, rate_hz: int, out: Path, into: list[Any]) -> None:
    """Sample the system during the load (from 1 s in); a profile that cannot be taken leaves
    a note saying why instead of failing the measurement."""
    await anyio.sleep(1.0)
    try:
        into.append(await record(pid, seconds=max(1.0, seconds - 2.0), rate_hz=rate_hz, out=out))
    except (RuntimeError, OSError, TimeoutError) as exc:
        into.append(f"no profile of pid {pid}: {exc}")


async def run(bench: BenchRun) -> None:
    db_path = bench.workdir / "read-model.db"
    if not db_path.exists():
        seed(db_path)
    options = bench.options
    rounds = QUICK_ROUNDS if options.quick else ROUNDS
    best: dict[str, Any] = {}
    profiled: dict[str, list[Profile | str]] = {name: [] for name in bench.systems}
    async with AsyncExitStack() as stack:
        # Every system up at once, idle but for its turn: the rounds alternate them so a busy
        # neighbour (2 shared cores) slows all alike; each system's best round counts.
        running: dict[str, tuple[int, Any]] = {}
        for name in bench.systems:
            port = free_port()
            argv = [
                sys.executable,
                "-m",
                "bench.scenarios.availability",
                name,
                str(port),
                str(db_path),
            ]
            served = await stack.enter_async_context(
                service(
                    name,
                    argv,
                    log_path=bench.workdir / f"{name}.log",
                    ready=partial(port_open, HOST, port),
                )
            )
            running[name] = (port, served)
        for n in range(rounds):
            for name, (port, served) in running.items():
                await bench.wait_for_quiet()
                log = bench.workdir / f"wrk-{name}-{n}.log"
                async with anyio.create_task_group() as tg:
                    if options.profile_hz and n == 0:
                        out = bench.workdir / f"py-spy-{name}.raw"
                        tg.start_soon(
                            _profile,
                            served.process.pid,
                            options.duration_s,
                            options.profile_hz,
                            out,
                            profiled[name],
                        )
                    finished = await _wrk(f"http://{HOST}:{port}", options, log)
                    if options.profile_hz and n == 0:
                        with anyio.move_on_after(PROFILE_GRACE_S):
                            while not profiled[name]:
                                await anyio.sleep(0.05)
                    tg.cancel_scope.cancel()
                figures = parse_wrk_output(finished.output, finished.figures)
                if name not in best or figures.accepted_per_s > best[name].accepted_per_s:
                    best[name] = figures
        peak_rss = {
            name: max(s.rss for s in served.watch.samples) / 2**20
            for name, (_, served) in running.items()
        }
    bench.result.settings |= {"rounds": rounds}
    for name in bench.systems:
        for profile in profiled[name]:
            bench.note(profile if isinstance(profile, str) else profile.line(name))
        figures = best[name]
        role, summary = SYSTEMS[name]
        bench.add(
            SystemResult(
                system=name,
                role=role,
                summary=summary,
                figures={
                    "requests_per_s": figures.accepted_per_s,
                    "p50_ms": figures.latency_ms.get("p50"),
                    "p99_ms": figures.latency_ms.get("p99"),
                    "p99.9_ms": figures.latency_ms.get("p99.9"),
                    "errors": sum(figures.errors.values()),
                    "peak_rss_mib": round(peak_rss[name], 1),
                },
            )
        )
    ceiling = "http-ceiling-get"
    for system, detail in (
        ("customer-api", "the read model's reads through the API, beside serving alone"),
        ("customer-api-uncached", "the same with the cache off: SQLite on every read"),
        ("customer-api-decoded", "the reader before (decoded on the thread), for comparison"),
    ):
        if {system, ceiling} <= set(bench.systems):
            bench.result.ratios.append(
                ratio(
                    f"{system} availability requests/s over the ceiling",
                    bench.result.figure(system, "requests_per_s"),
                    bench.result.figure(ceiling, "requests_per_s"),
                    at_least=TARGET if system == "customer-api" else None,
                    detail=f"{detail} (issue 20)",
                )
            )


async def _wrk(url: str, options: Any, log_path: Path) -> Any:
    from bench.harness.processes import run_to_end

    argv = [
        wrk_binary(),
        f"-t{options.threads}",
        f"-c{max(options.connections, options.threads)}",
        f"-d{max(1, round(options.duration_s))}s",
        "-s",
        str(SCRIPT),
        url,
        "--",
        API_KEY,
        str(SKUS),
        str(SKUS_PER_REQUEST),
    ]
    return await run_to_end(
        "wrk", argv, log_path=log_path, time_limit=options.duration_s + WRK_OVERRUN_S
    )


SCENARIO = Scenario(
    name="availability",
    summary="customer API availability reads beside an HTTP ceiling on the same server",
    default_systems=tuple(SYSTEMS),
    columns=COLUMNS,
    run=run,
    known_systems=tuple(SYSTEMS),
)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve one system: `python -m bench.scenarios.availability SYSTEM PORT DB`."""
    parser = argparse.ArgumentParser()
    parser.add_argument("system", choices=sorted(SYSTEMS))
    parser.add_argument("port", type=int)
    parser.add_argument("db", type=Path)
    args = parser.parse_args(argv)
    import uvloop

    uvloop.install()
    asyncio.run(_serve(args.system, args.port, args.db))


if __name__ == "__main__":
    main()
