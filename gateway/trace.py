"""The trace of a purchase-order thread: every document and event in order, with hop latencies,
its current state, open timers and open exceptions.

Served on the admin listener (`GET /threads/{correlation_id}`, `GET /purchase-orders/{buyer}/
{po_number}`: JSON, problem+json errors) and printed by `gateway trace PO-NUMBER|CORRELATION-ID
--config FILE`, which reads the store file read-only beside a running gateway.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import msgspec
from msgspec import Struct
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from actors.workflow.state import ThreadState, decode_state
from canonical.errors import ConfigError
from gateway.config.partial import load_store_settings
from gateway.store.workflow_state import ThreadRow, WorkflowLedger, reading
from protocols.http.router import json_response
from protocols.http.routing import NotFound

__all__ = [
    "ThreadTrace",
    "TraceApi",
    "find_threads",
    "run_trace_command",
    "thread_trace",
    "trace_routes",
]


class TraceEntry(Struct, frozen=True, kw_only=True):
    """One document the thread took (input) or event it emitted, and the hop that led to it."""

    at: float  # accepted / settled / due (inputs); emitted (events)
    role: str  # "input" or "event"
    channel: str  # amqp, webhook, delivery, timer
    partner: str | None
    document_type: str
    message_id: str
    causation_id: str | None
    hop: str | None  # "previous input -> this" (an event: "its cause -> this")
    hop_s: float | None  # seconds that hop took


class LineView(Struct, frozen=True, kw_only=True):
    line_number: int
    sku: str
    ordered: str
    acknowledged: str | None
    shipped: str
    received: str
    invoiced: str
    cancelled: bool


class ThreadTrace(Struct, frozen=True, kw_only=True):
    supplier: str
    po_number: str
    buyer: str | None
    correlation_id: str | None
    status: str
    version: int
    entries: list[TraceEntry]
    lines: list[LineView]
    parked: int
    timers: list[dict[str, Any]]  # open (armed) timers: kind, due_at
    exceptions: list[dict[str, Any]]  # open exceptions: id, kind, raised_at, line, description


async def find_threads(ledger: WorkflowLedger, reference: str) -> list[ThreadRow]:
    """The threads a reference names: a correlation id, else a PO number (any buyer)."""
    found = await ledger.thread_by_correlation(reference)
    if found is not None:
        return [found]
    return await ledger.threads_of_order(reference)


async def thread_trace(ledger: WorkflowLedger, row: ThreadRow) -> ThreadTrace:
    """The whole trace of one thread, read now."""
    journal = await ledger.journal(row.id)
    entries: list[TraceEntry] = []
    # An input's hop is from the input before it (the order delivered -> its ack received);
    # an event's is from the input that caused it (accepted -> emitted).
    inputs: dict[str, tuple[float, str]] = {}
    previous: tuple[float, str] | None = None
    for (
        _,
        message_id,
        role,
        causation,
        document_type,
        partner,
        channel,
        occurred,
        applied,
    ) in journal:
        at = occurred if role == "input" else applied
        origin = previous if role == "input" else inputs.get(causation or "", previous)
        entries.append(
            TraceEntry(
                at=at,
                role=role,
                channel=channel,
                partner=partner,
                document_type=document_type,
                message_id=message_id,
                causation_id=causation,
                hop=f"{origin[1]} -> {document_type}" if origin else None,
                hop_s=round(at - origin[0], 6) if origin else None,
            )
        )
        if role == "input":
            previous = inputs[message_id] = (at, document_type)
    state = decode_state(row.state)
    timers = [
        {"kind": kind, "due_at": due_at, "generation": generation}
        for kind, due_at, generation, timer_state in await ledger.timers_of(row.id)
        if timer_state == "armed"
    ]
    return ThreadTrace(
        supplier=row.supplier,
        po_number=row.po_number,
        buyer=row.buyer,
        correlation_id=row.correlation_id,
        status=row.status,
        version=row.version,
        entries=entries,
        lines=_lines(state),
        parked=len(state.parked),
        timers=timers,
        exceptions=[msgspec.to_builtins(e) for e in state.exceptions],
    )


def _lines(state: ThreadState) -> list[LineView]:
    zero = "0"
    return [
        LineView(
            line_number=n,
            sku=line.sku,
            ordered=str(line.quantity),
            acknowledged=(
                str(state.acks[n].quantity)
                if n in state.acks and state.acks[n].quantity is not None
                else (state.acks[n].status if n in state.acks else None)
            ),
            shipped=str(state.shipped.get(n, zero)),
            received=str(state.received.get(n, zero)),
            invoiced=str(state.invoiced.get(n, zero)),
            cancelled=line.cancelled,
        )
        for n, line in sorted(state.lines.items())
    ]


class TraceApi:
    """The handlers of `/threads/{correlation_id}` and `/purchase-orders/{buyer}/{po_number}`."""

    def __init__(self, ledger: WorkflowLedger) -> None:
        self._ledger = ledger

    async def thread(self, request: Request) -> Response:
        correlation_id: str = request.path_params["correlation_id"]
        row = await self._ledger.thread_by_correlation(correlation_id)
        if row is None:
            raise NotFound(f"no thread with correlation id {correlation_id[:80]}")
        return json_response(msgspec.to_builtins(await thread_trace(self._ledger, row)))

    async def order(self, request: Request) -> Response:
        buyer: str = request.path_params["buyer"]
        po_number: str = request.path_params["po_number"]
        rows = await self._ledger.threads_of_order(po_number, buyer=buyer)
        if not rows:
            raise NotFound(f"no thread for purchase order {po_number[:80]} of {buyer[:80]}")
        traces = [await thread_trace(self._ledger, row) for row in rows]
        return json_response({"threads": msgspec.to_builtins(traces)})


def trace_routes(api: TraceApi) -> list[Route]:
    """The admin listener's routes for the trace (gateway/admin.py `AdminApp(routes=)`)."""
    return [
        Route("/threads/{correlation_id}", api.thread, methods=["GET"]),
        Route("/purchase-orders/{buyer}/{po_number}", api.order, methods=["GET"]),
    ]


def run_trace_command(
    reference: str, config_path: Path, environ: Mapping[str, str], *, as_json: bool = False
) -> int:
    """`gateway trace PO-NUMBER|CORRELATION-ID --config FILE`: print each thread it names."""
    try:
        # The store alone: a partner's secret missing from this shell does not stop a trace.
        store = load_store_settings(config_path)
    except ConfigError as exc:
        for error in exc.errors:
            print(error.message, file=sys.stderr)
        return 2
    if not Path(store.path).exists():
        print(f"no store at {store.path}", file=sys.stderr)
        return 1

    async def run() -> list[ThreadTrace]:
        async with reading(store.path) as ledger:
            return [
                await thread_trace(ledger, row) for row in await find_threads(ledger, reference)
            ]

    traces = anyio.run(run)
    if not traces:
        print(f"no thread for {reference!r} (a correlation id or a PO number)", file=sys.stderr)
        return 1
    if as_json:
        print(msgspec.json.encode(traces).decode())
        return 0
    for trace in traces:
        print(render(trace))
    return 0


def render(trace: ThreadTrace) -> str:
    """The trace as text for a terminal."""
    out = [
        f"thread {trace.supplier}/{trace.po_number}  buyer {trace.buyer or '-'}  "
        f"status {trace.status}  correlation {trace.correlation_id or '-'}",
        f"  {'time (UTC)':<24} {'hop':>10}  {'role':<5} {'channel':<8} {'partner':<10} "
        f"{'document':<32} message id",
    ]
    for e in trace.entries:
        hop = "" if e.hop_s is None else _duration(e.hop_s)
        out.append(
            f"  {_time(e.at):<24} {hop:>10}  {e.role:<5} {e.channel:<8} {e.partner or '-':<10} "
            f"{e.document_type:<32} {e.message_id}"
        )
    lines = "; ".join(
        f"{v.line_number} {v.sku} ordered {v.ordered} ack {v.acknowledged or '-'} "
        f"shipped {v.shipped} received {v.received} invoiced {v.invoiced}"
        + (" (cancelled)" if v.cancelled else "")
        for v in trace.lines
    )
    out.append(f"  lines: {lines or '(no order yet)'}")
    if trace.parked:
        out.append(f"  waiting for the order: {trace.parked} input(s)")
    timers = ", ".join(f"{t['kind']} due {_time(t['due_at'])}" for t in trace.timers)
    out.append(f"  open timers: {timers or 'none'}")
    out.append("  open exceptions:" + ("" if trace.exceptions else " none"))
    for x in trace.exceptions:
        line = f" line {x['line_number']}" if x.get("line_number") else ""
        out.append(f"    {x['kind']}{line}: {x['description']}")
    return "\n".join(out)


def _time(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="milliseconds")[:23] + "Z"


def _duration(seconds: float) -> str:
    if abs(seconds) < 1:
        return f"+{seconds * 1000:.0f} ms"
    if abs(seconds) < 120:
        return f"+{seconds:.1f} s"
    if abs(seconds) < 7200:
        return f"+{seconds / 60:.1f} min"
    return f"+{seconds / 3600:.1f} h"
