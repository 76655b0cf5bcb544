"""The durable sketch: signature check, typed decode and an fsync'd SQLite group commit, no more.

The issue's yardstick, written as a team would on its first afternoon: one ASGI app, HMAC
(Standard Webhooks), msgspec decode into a plain PO struct (no business rules), every request's
row committed with `synchronous=FULL` by one writer thread in batches, then 202. No relay, no
idempotency, no rate limit, no actors. The gateway does all of those on top, so "gateway / sketch"
says what they cost or save.

    python -m bench.baselines.durable_sketch --port 8000 --secrets FILE --db PATH
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import sqlite3
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgspec

from bench.baselines.serving import add_server_arguments, serve

__all__ = ["main"]


class Quantity(msgspec.Struct):
    value: str
    uom: str


class Money(msgspec.Struct):
    amount: str
    currency: str


class Party(msgspec.Struct):
    party_id: str
    name: str | None = None
    gln: str | None = None
    address: dict[str, Any] | None = None


class Line(msgspec.Struct):
    line_number: int
    sku: str
    quantity: Quantity
    unit_price: Money
    gtin: str | None = None
    description: str | None = None
    requested_date: str | None = None


class PurchaseOrder(msgspec.Struct):
    document_type: str
    po_number: str
    buyer: Party
    supplier: Party
    ship_to: Party
    order_date: str
    currency: str
    lines: list[Line]


_decode = msgspec.json.Decoder(PurchaseOrder).decode
_HEADERS = [(b"content-type", b"application/json")]


class GroupCommit:
    """One writer thread; requests wait in `pending` and are committed together."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.executescript(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
            "CREATE TABLE IF NOT EXISTS outbox (id TEXT PRIMARY KEY, body BLOB NOT NULL)"
        )
        self.pending: list[tuple[tuple[str, bytes], asyncio.Future[None]]] = []
        self.wake = asyncio.Event()
        self.thread = ThreadPoolExecutor(1)

    def _write(self, rows: list[tuple[str, bytes]]) -> None:
        self.db.execute("BEGIN")
        try:
            self.db.executemany("INSERT INTO outbox VALUES (?, ?)", rows)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self.wake.wait()
            self.wake.clear()
            batch, self.pending = self.pending, []
            try:
                await loop.run_in_executor(self.thread, self._write, [row for row, _ in batch])
            except sqlite3.Error as exc:  # the whole batch fails (a repeated id, a full disk)
                outcome: BaseException | None = exc
            else:
                outcome = None
            for _, done in batch:
                if done.done():
                    continue
                if outcome is None:
                    done.set_result(None)
                else:
                    done.set_exception(outcome)

    async def add(self, row: tuple[str, bytes]) -> None:
        done = asyncio.get_running_loop().create_future()
        self.pending.append((row, done))
        self.wake.set()
        await done


def make_app(keys: dict[str, bytes], db_path: str) -> Any:
    store: GroupCommit | None = None

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal store
        if scope["type"] == "lifespan":
            await receive()
            store = GroupCommit(db_path)
            asyncio.get_running_loop().create_task(store.run())
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        headers = dict(scope["headers"])
        partner = scope["path"].split("/")[2]
        msg_id = headers.get(b"webhook-id", b"")
        signed = msg_id + b"." + headers.get(b"webhook-timestamp", b"") + b"." + body
        expected = base64.b64encode(
            hmac.new(keys.get(partner, b""), signed, hashlib.sha256).digest()
        )
        status = 401
        signature = headers.get(b"webhook-signature", b"")
        if signature.startswith(b"v1,") and hmac.compare_digest(signature[3:], expected):
            try:
                _decode(body)
            except msgspec.ValidationError:
                status = 422
            else:
                assert store is not None
                try:
                    await store.add((msg_id.decode(), body))
                    status = 202
                except sqlite3.Error:
                    status = 503
        await send({"type": "http.response.start", "status": status, "headers": _HEADERS})
        await send({"type": "http.response.body", "body": b'{"status":"accepted"}'})

    return app


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_server_arguments(parser)
    parser.add_argument("--secrets", required=True, help="lines 'partner whsec_...'")
    parser.add_argument("--db", required=True)
    args = parser.parse_args(argv)
    keys = {}
    with open(args.secrets) as lines:
        for line in lines:
            partner, secret = line.split()
            keys[partner] = base64.b64decode(secret.removeprefix("whsec_"))
    serve(make_app(keys, args.db), args, lifespan="on")
    return 0


if __name__ == "__main__":
    sys.exit(main())
