"""The customer API app on a real loopback listener: availability from a read model of real
SQLite rows, scoped to the account's locations; every refusal as problem+json."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

import anyio
import httpx
import msgspec
import pytest

from canonical.availability import Availability
from gateway.store.inventory import AvailabilityJson
from protocols.http.api import (
    Account,
    Accounts,
    ApiLimits,
    AvailabilityAnswer,
    OrderRequest,
    OrderStatusAnswer,
    Submitted,
    customer_api,
    key_digest,
)
from protocols.http.server import serve

pytestmark = pytest.mark.anyio

KEY = "k" * 40
ACCOUNT = Account(
    id="acme-retail",
    key_digests=(key_digest(KEY),),
    locations=frozenset({"DC-EAST", "DC-WEST"}),
    ship_tos=frozenset({"STORE-1"}),
)
T0 = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)


class SqliteAvailability:
    """A small availability read model over real rows (the inventory helper builds the real
    one: `store.inventory.availability`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with sqlite3.connect(path) as db:
            db.execute(
                "CREATE TABLE availability (sku TEXT, location_id TEXT, on_hand TEXT,"
                " allocated TEXT, as_of REAL, PRIMARY KEY (sku, location_id))"
            )

    def put(self, sku: str, location: str, on_hand: int, allocated: int, hours: int) -> None:
        with sqlite3.connect(self.path) as db:
            db.execute(
                "INSERT INTO availability VALUES (?, ?, ?, ?, ?)",
                (sku, location, on_hand, allocated, (T0 + dt.timedelta(hours=hours)).timestamp()),
            )

    async def availability_json(
        self, skus: Sequence[str], location_id: str | None
    ) -> list[AvailabilityJson]:
        marks = ",".join("?" * len(skus))
        where = "" if location_id is None else " AND location_id = ?"
        with sqlite3.connect(self.path) as db:
            rows = db.execute(
                f"SELECT * FROM availability WHERE sku IN ({marks}){where}"
                " ORDER BY sku, location_id",
                (*skus, *([] if location_id is None else [location_id])),
            ).fetchall()
        found = [
            Availability(
                sku=sku,
                location_id=location,
                uom="EA",
                on_hand=Decimal(on_hand),
                allocated=Decimal(allocated),
                in_transit=Decimal(0),
                quarantined=Decimal(0),
                available=Decimal(on_hand) - Decimal(allocated),
                as_of=dt.datetime.fromtimestamp(as_of, dt.UTC),
            )
            for sku, location, on_hand, allocated, as_of in rows
        ]
        return [(a.sku, a.location_id, a.as_of, msgspec.json.encode(a)) for a in found]


class NoOrders:
    async def submit(
        self, account_id: str, idempotency_key: str, body: bytes, order: OrderRequest
    ) -> Submitted:
        raise AssertionError("not in these tests")

    async def status(self, account_id: str, order_id: str) -> OrderStatusAnswer | None:
        return None


@asynccontextmanager
async def listening(source: SqliteAvailability) -> AsyncIterator[httpx.AsyncClient]:
    app = customer_api(
        Accounts([ACCOUNT], lambda _: 0.0), source, NoOrders(), ApiLimits(max_skus=3)
    )
    async with anyio.create_task_group() as tg:
        port = await tg.start(
            lambda task_status: serve(app, host="127.0.0.1", port=0, task_status=task_status)
        )
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}/api/v1", headers={"x-api-key": KEY}
        ) as http:
            yield http
        tg.cancel_scope.cancel()


@pytest.fixture
def source(tmp_path: Path) -> SqliteAvailability:
    rows = SqliteAvailability(tmp_path / "read-model.db")
    rows.put("SKU-1", "DC-EAST", 10, 4, hours=2)
    rows.put("SKU-1", "DC-WEST", 5, 0, hours=1)
    rows.put("SKU-1", "DC-NORTH", 99, 0, hours=3)  # not the account's location
    rows.put("SKU-2", "DC-EAST", 7, 7, hours=4)
    return rows


async def test_availability_answers_the_accounts_locations_with_as_of(
    source: SqliteAvailability,
) -> None:
    async with listening(source) as http:
        answer = await http.get(
            "/availability", params=[("sku", "SKU-1"), ("sku", "SKU-2"), ("sku", "NOPE")]
        )

    assert answer.status_code == 200
    # The rows go out as stored, pre-encoded: the answer is still the documented contract.
    msgspec.json.decode(answer.content, type=AvailabilityAnswer)
    body = answer.json()
    assert [(i["sku"], i["location_id"], i["available"]) for i in body["items"]] == [
        ("SKU-1", "DC-EAST", "6"),
        ("SKU-1", "DC-WEST", "5"),
        ("SKU-2", "DC-EAST", "0"),
    ]
    assert body["as_of"] == "2026-12-01T09:00:00Z"  # the oldest row's: nothing is older
    assert body["unknown"] == ["NOPE"]


async def test_availability_at_one_location(source: SqliteAvailability) -> None:
    async with listening(source) as http:
        answer = await http.get("/availability", params={"sku": "SKU-1", "location": "DC-WEST"})

    assert [(i["location_id"], i["on_hand"]) for i in answer.json()["items"]] == [("DC-WEST", "5")]


@pytest.mark.parametrize(
    ("query", "items"),
    [
        ("sku=SKU-1&sku=SKU-1&location=DC-WEST", [("SKU-1", "DC-WEST")]),
        (
            "sku=SKU%2D2&sku=SKU-1&location=DC-NORTH&location=DC-EAST",
            [("SKU-1", "DC-EAST"), ("SKU-2", "DC-EAST")],
        ),
        ("location=&sku=SKU-2&flag", [("SKU-2", "DC-EAST")]),
    ],
    ids=["duplicates", "escaped-and-last-location", "blank-location"],
)
async def test_availability_reads_the_query_as_starlette_does(
    source: SqliteAvailability, query: str, items: list[tuple[str, str]]
) -> None:
    async with listening(source) as http:
        answer = await http.get(f"/availability?{query}")

    assert answer.status_code == 200
    assert [(i["sku"], i["location_id"]) for i in answer.json()["items"]] == items


@pytest.mark.parametrize(
    ("method", "path", "params", "headers", "status", "reason"),
    [
        ("GET", "/availability", {"sku": "SKU-1"}, {"x-api-key": ""}, 401, "unauthenticated"),
        ("GET", "/availability", {"sku": "SKU-1"}, {"x-api-key": "x" * 40}, 401, "unauthenticated"),
        ("GET", "/availability", {"sku": "SKU-1", "location": "DC-NORTH"}, {}, 403, "forbidden"),
        ("GET", "/availability", {}, {}, 400, "bad-request"),
        ("GET", "/availability", [("sku", f"S{n}") for n in range(4)], {}, 400, "bad-request"),
        ("GET", "/nowhere", {}, {}, 404, "not-found"),
        ("DELETE", "/availability", {}, {}, 405, "method-not-allowed"),
        ("GET", "/orders/SO-000000000000000000000000", {}, {}, 404, "not-found"),
    ],
    ids=[
        "no-key",
        "wrong-key",
        "other-location",
        "no-sku",
        "too-many-skus",
        "no-route",
        "method",
        "no-order",
    ],
)
async def test_refusals_are_problem_json(
    source: SqliteAvailability,
    method: str,
    path: str,
    params: object,
    headers: dict[str, str],
    status: int,
    reason: str,
) -> None:
    async with listening(source) as http:
        answer = await http.request(method, path, params=params, headers=headers)  # type: ignore[arg-type]

    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"].endswith(reason)
    if status == 405:
        assert "GET" in answer.headers["allow"].split(", ")
