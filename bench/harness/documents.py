"""The purchase orders the bench sends, and the partners that sign them.

Every request carries a distinct order: the PO number holds the request's sequence number
(`BPO-0000000042`), so the gateway never sees a duplicate, and a consumer on the queue can tell
which request a message came from by finding that number in the message body.

The body is built from one template split around the sequence number, so a load generator
(Python or wrk's Lua) makes a new body with one concatenation. Once `canonical.samples` exists,
its purchase order is used as the template (it is what the gateway's own tests send); until
then this module's own order, which decodes as `canonical.orders.PurchaseOrder`.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import os
import re
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = [
    "PO_NUMBER_PATTERN",
    "SEQ_DIGITS",
    "BenchPartner",
    "OrderTemplate",
    "bench_partners",
    "order_template",
]

#: Digits of the sequence number inside the PO number: fixed width keeps every body one size.
SEQ_DIGITS = 10
_PO_PREFIX = "BPO-"
#: Finds the sequence number in any message that carries the order (raw, canonical, envelope).
PO_NUMBER_PATTERN = re.compile(rb"BPO-(\d{%d})" % SEQ_DIGITS)
_MARK = "BPO-" + "#" * SEQ_DIGITS

# About 650 bytes once compact, like a real two-line order.
_OWN_ORDER: dict[str, Any] = {
    "document_type": "purchase_order",
    "po_number": _MARK,
    "buyer": {"party_id": "DIST-01", "name": "Northwind Distribution", "gln": "5790000000012"},
    "supplier": {"party_id": "ACME", "name": "Acme Supplies Ltd"},
    "ship_to": {
        "party_id": "DC-EAST",
        "address": {
            "line1": "100 Harbour Road",
            "city": "Newark",
            "postal_code": "07114",
            "country": "US",
        },
    },
    "order_date": "2026-11-20",
    "currency": "USD",
    "lines": [
        {
            "line_number": 1,
            "sku": "WID-1000",
            "gtin": "00012345600012",
            "description": "Widget, steel, 10 mm",
            "quantity": {"value": "240", "uom": "EA"},
            "unit_price": {"amount": "3.75", "currency": "USD"},
            "requested_date": "2026-12-01",
        },
        {
            "line_number": 2,
            "sku": "BRK-2040",
            "quantity": {"value": "12", "uom": "CS"},
            "unit_price": {"amount": "41.20", "currency": "USD"},
            "requested_date": "2026-12-01",
        },
    ],
}


@dataclass(frozen=True)
class OrderTemplate:
    """A purchase order body split around its sequence number: `head + digits + tail`."""

    head: bytes
    tail: bytes
    source: str  # where the order came from: "canonical.samples" or "bench"

    def body(self, seq: int) -> bytes:
        """Return the order with PO number `BPO-<seq>`."""
        return self.head + b"%0*d" % (SEQ_DIGITS, seq) + self.tail

    @property
    def size(self) -> int:
        return len(self.head) + SEQ_DIGITS + len(self.tail)


def order_template() -> OrderTemplate:
    """Return the purchase order template: canonical's sample if it exists, else the bench's own."""
    sample = _canonical_sample()
    order, source = (sample, "canonical.samples") if sample is not None else (_OWN_ORDER, "bench")
    order = {**order, "po_number": _MARK}
    text = orjson.dumps(order)
    head, _, tail = text.partition(_MARK.encode())
    return OrderTemplate(head=head + _PO_PREFIX.encode(), tail=tail, source=source)


def _canonical_sample() -> dict[str, Any] | None:
    try:
        samples = importlib.import_module("canonical.samples")
    except ImportError:
        return None
    sample_body = getattr(samples, "sample_body", None)
    if sample_body is None:
        return None
    order = orjson.loads(sample_body("purchase_order", 1))
    return order if isinstance(order, dict) and "po_number" in order else None


@dataclass(frozen=True)
class BenchPartner:
    """A partner the bench posts as: its id and its Standard Webhooks secret."""

    id: str
    secret: str  # "whsec_" + base64 of the key

    @property
    def key(self) -> bytes:
        return base64.b64decode(self.secret.removeprefix("whsec_"))

    def path(self, document: str = "purchase_order") -> str:
        return f"/webhooks/{self.id}/{document}"


def bench_partners(count: int, seed: bytes | None = None) -> list[BenchPartner]:
    """Return `count` partners `bench-p00`... with secrets derived from `seed` (random if None)."""
    seed = os.urandom(16) if seed is None else seed
    partners = []
    for i in range(count):
        key = hashlib.sha256(seed + i.to_bytes(4, "big")).digest()
        partners.append(BenchPartner(f"bench-p{i:02d}", "whsec_" + base64.b64encode(key).decode()))
    return partners
