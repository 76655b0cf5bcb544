"""846 inventory inquiry/advice <-> `InventoryPosition` (one per LIN loop).

BIA (purpose 00, report type DD, a report id, the as-of date and time in UTC), N1*WH the
location (its id in N104), then per item LIN (BP sku) and one QTY per bucket, the unit in
QTY03: 17 on hand, 33 available, 02 allocated, 67 in transit, QH quarantined (the gateway's
codes; a partner's guide may differ). CTT counts the LIN loops. One set may carry many items:
each becomes its own document. Writing, one position is one set.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from canonical.inventory import InventoryPosition
from canonical.x12.elements import SetReader, SetWriter
from canonical.x12.parties import product_ids

__all__ = ["decode_846", "encode_846"]

BUCKETS = {
    "on_hand": "17",
    "available": "33",
    "allocated": "02",
    "in_transit": "67",
    "quarantined": "QH",
}
CODES = {code: name for name, code in BUCKETS.items()}
MAX_REPORT_ID = 30


def encode_846(position: InventoryPosition, w: SetWriter) -> None:
    at = position.as_of.astimezone(dt.UTC)
    report_id = f"{position.location_id}-{at:%Y%m%d%H%M%S}"[-MAX_REPORT_ID:]
    w.segment("BIA", "00", "DD", report_id, at.date(), f"{at:%H%M%S}")
    w.segment("N1", "WH", None, "92", position.location_id)
    w.segment("LIN", None, "BP", position.sku)
    uom = w.profile.their_uom(position.uom)
    for name, code in BUCKETS.items():
        value = getattr(position, name)
        if value or name in ("on_hand", "available"):
            w.segment("QTY", code, value, uom)
    w.segment("CTT", 1)


def decode_846(r: SetReader) -> list[InventoryPosition]:
    bia = r.first("BIA")
    day = r.date(bia, 4, "$.as_of", required=True)
    time = r.time(bia, 5) or dt.time(0)
    assert day is not None
    as_of = dt.datetime.combine(day, time, tzinfo=dt.UTC)
    location: str | None = None
    items: list[tuple[dict[str, Any], dict[str, tuple[Any, int]]]] = []
    for seg in r.segments:
        if seg.tag == "N1" and seg.element(1) == "WH":
            location = r.text(seg, 4, "$.location_id", required=True)
            r.origins["$.location_id"] = (seg, 4)
        elif seg.tag == "LIN":
            r.loop = "LIN"
            item: dict[str, Any] = {"as_of": as_of}
            item.update(product_ids(r, seg, 2, "$", {"BP": "sku", "VP": "sku"}))
            items.append((item, {"$.sku": (seg, 3)}))
        elif seg.tag == "QTY" and items:
            item, origins = items[-1]
            name = CODES.get(seg.element(1))
            if name is not None:
                item[name] = r.decimal(seg, 2, f"$.{name}", required=True)
                origins[f"$.{name}"] = (seg, 2)
                item["uom"] = r.profile.our_uom(r.component(seg, 3, 1))
                origins["$.uom"] = (seg, 3)
    if not items:
        raise r.missing("LIN", bia)
    positions = []
    for item, origins in items:
        item["location_id"] = location
        if "available" not in item and "on_hand" in item:
            held = sum(item.get(k, 0) for k in ("allocated", "quarantined"))
            item["available"] = item["on_hand"] - held
        # Each item is its own document: its errors point at its own segments.
        r.origins = {**r.origins, **origins}
        positions.append(r.build(InventoryPosition, item, bia))
    return positions
