"""availability: the customer API's availability reads beside an HTTP ceiling, in one run.

wrk (closed loop, `--connections`, `--threads`, `--duration`) asks for `SKUS_PER_REQUEST`
random SKUs of a read model of `SKUS` SKUs at two locations, with the account's API key:
- `customer-api`: the customer API app (protocols/http/api: key check, starlette router,
  account scoping, problem+json mapping, msgspec encoding) over a SQLite read model read with
  aiosqlite, served the way the gateway serves it (protocols.http.server.serve, uvloop);
- `http-ceiling-get`: an ASGI app on the same server answering every GET with a fixed body of
  the same size: what serving alone costs.
The read model is a table shaped like the availability rows (the inventory read model, issue
20 item 1, is built apart; the bench reads a table of its shape). Target: >= 0.5 of the
ceiling's requests/s; p99 reported.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sqlite3
import sys
from collections.abc import Sequence
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import msgspec

from bench.harness.probes import port_open
from bench.harness.processes import service
from bench.harness.results import SystemResult, ratio
from bench.harness.run import BenchRun, Scenario
from bench.harness.wrk import WRK_OVERRUN_S, parse_wrk_output, wrk_binary
from canonical.availability import Availability
from gateway.localbroker import free_port

__all__ = ["SCENARIO"]

HOST = "127.0.0.1"
SKUS = 10_000
SKUS_PER_REQUEST = 10
LOCATIONS = ("DC-EAST", "DC-WEST")
API_KEY = "bench-customer-api-key-0123456789abcdef"
SCRIPT = Path(__file__).resolve().parents[1] / "harness" / "availability.lua"
TARGET = 0.5
COLUMNS = ("requests_per_s", "p50_ms", "p99_ms", "p99.9_ms", "errors", "peak_rss_mib")
SYSTEMS = {
    "customer-api": ("gateway", "customer API availability over a SQLite read model"),
    "http-ceiling-get": ("ceiling", "fixed answer of the same size on the same server"),
}
AS_OF = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)


def seed(path: Path) -> None:
    """Write the read model: SKUS SKUs at each location."""
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE availability (sku TEXT, location_id TEXT, on_hand TEXT, allocated TEXT,"
            " as_of REAL, PRIMARY KEY (sku, location_id)) WITHOUT ROWID"
        )
        db.executemany(
            "INSERT INTO availability VALUES (?, ?, ?, ?, ?)",
            (
                (f"SKU-{n:06d}", loc, str(n % 500), str(n % 7), AS_OF.timestamp())
                for n in range(SKUS)
                for loc in LOCATIONS
            ),
        )


class SqliteReadModel:
    """Availability rows read with aiosqlite, as the store's read connection does."""

    def __init__(self, db: Any) -> None:
        self.db = db

    async def availability(
        self, skus: Sequence[str], location_id: str | None
    ) -> list[Availability]:
        marks = ",".join("?" * len(skus))
        where = "" if location_id is None else " AND location_id = ?"
        params = (*skus, *(() if location_id is None else (location_id,)))
        sql = f"SELECT * FROM availability WHERE sku IN ({marks}){where}"
        # One hop to aiosqlite's thread (execute + fetchall + close would be three).
        rows = await self.db.execute_fetchall(sql, params)
        return [
            Availability(
                sku=sku,
                location_id=loc,
                uom="EA",
                on_hand=Decimal(on_hand),
                allocated=Decimal(allocated),
                in_transit=Decimal(0),
                quarantined=Decimal(0),
                available=Decimal(on_hand) - Decimal(allocated),
                as_of=dt.datetime.fromtimestamp(as_of, dt.UTC),
            )
            for sku, loc, on_hand, allocated, as_of in rows
        ]


class _NoOrders:
    async def submit(self, *args: object) -> Any:
        raise RuntimeError("the bench reads availability only")

    async def status(self, *args: object) -> None:
        return None


async def _serve(system: str, port: int, db_path: Path) -> None:
    import aiosqlite

    from protocols.http.api import Account, Accounts, ApiLimits, customer_api, key_digest
    from protocols.http.server import serve

    async with aiosqlite.connect(db_path) as db:
        model = SqliteReadModel(db)
        if system == "customer-api":
            account = Account(
                id="bench-customer",
                key_digests=(key_digest(API_KEY),),
                locations=frozenset(LOCATIONS),
                ship_tos=frozenset({"STORE-1"}),
            )
            app = customer_api(Accounts([account], lambda _: 0.0), model, _NoOrders(), ApiLimits())
        else:
            sample = await model.availability(
                [f"SKU-{n:06d}" for n in range(SKUS_PER_REQUEST)], None
            )
            body = msgspec.json.encode({"as_of": AS_OF, "items": sample, "unknown": []})

            async def app(scope: Any, receive: Any, send: Any) -> None:
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

        await serve(app, host=HOST, port=port, backlog=2048)


async def run(bench: BenchRun) -> None:
    db_path = bench.workdir / "read-model.db"
    if not db_path.exists():
        seed(db_path)
    options = bench.options
    for name in bench.systems:
        port = free_port()
        log = bench.workdir / f"{name}.log"
        argv = [sys.executable, "-m", "bench.scenarios.availability", name, str(port), str(db_path)]
        async with service(
            name, argv, log_path=log, ready=partial(port_open, HOST, port)
        ) as running:
            await bench.wait_for_quiet()
            finished = await _wrk(
                f"http://{HOST}:{port}", options, bench.workdir / f"wrk-{name}.log"
            )
            peak_rss = max(s.rss for s in running.watch.samples) / 2**20
        figures = parse_wrk_output(finished.output, finished.figures)
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
                    "peak_rss_mib": round(peak_rss, 1),
                },
            )
        )
    if set(SYSTEMS) <= set(bench.systems):
        bench.result.ratios.append(
            ratio(
                "customer-api availability requests/s over the ceiling",
                bench.result.figure("customer-api", "requests_per_s"),
                bench.result.figure("http-ceiling-get", "requests_per_s"),
                at_least=TARGET,
                detail="the read model's reads through the API, beside serving alone (issue 20)",
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
