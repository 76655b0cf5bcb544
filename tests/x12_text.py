"""Hand-written X12 for the codec's tests: an ISA of the right width, sets counted right."""

from __future__ import annotations

from collections.abc import Sequence


def isa(
    control: str = "000000905",
    *,
    ack: str = "0",
    version: str = "00401",
    sender: str = "ACMESUPPLY",
    receiver: str = "DISTCO",
    separator: str = "*",
    component: str = ":",
    terminator: str = "~",
) -> str:
    fields = [
        "00", " " * 10, "00", " " * 10, "ZZ", f"{sender:<15}", "ZZ", f"{receiver:<15}",
        "260309", "0815", "U", version, control, ack, "P", component,
    ]  # fmt: skip
    return "ISA" + separator + separator.join(fields) + terminator


def po_set(control: str = "0001", *, order_date: str = "20260302", sku: str = "SKU-1") -> list[str]:
    """An 850 as segments (no terminators), SE01 counted."""
    body = [
        "BEG*00*SA*PO-1**" + order_date,
        "CUR*BY*USD",
        "N1*BY**92*distco",
        "N1*SU**92*acme",
        "PO1*1*12*EA*4.25**BP*" + sku,
        "DTM*002*20260309",
        "CTT*1",
    ]
    return [f"ST*850*{control}", *body, f"SE*{len(body) + 2}*{control}"]


def group(
    sets: Sequence[list[str]],
    control: str = "77",
    *,
    functional_id: str = "PO",
    version: str = "004010",
) -> list[str]:
    segments = [f"GS*{functional_id}*ACMESUPPLY*DISTCO*20260309*0815*{control}*X*{version}"]
    for one in sets:
        segments += one
    return [*segments, f"GE*{len(sets)}*{control}"]


def interchange(groups: Sequence[list[str]], control: str = "000000905", **isa_fields: str) -> str:
    segments = [segment for one in groups for segment in one]
    body = "".join(segment + "~\n" for segment in segments)
    return isa(control, **isa_fields) + "\n" + body + f"IEA*{len(groups)}*{control}~\n"
