"""The console's page bodies: data in, escaped HTML out (gateway/console/html.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from canonical.delivery import DeliveryAttempt, DeliveryRecord
from gateway.console.html import Html, attr, esc, link, query, table, when
from gateway.store.workflow_reads import ThreadRow
from gateway.trace import ThreadTrace

__all__ = [
    "dead_letter",
    "dead_letters",
    "deliveries",
    "endpoints",
    "exceptions",
    "overview",
    "search_results",
    "thread",
]

_FLASH = Html('<p id="flash" role="status"></p>')


def overview(data: Mapping[str, Any], poll_ms: int) -> Html:
    partners = table(
        [
            "partner",
            "in / min",
            "out / min",
            "backlog",
            "oldest pending",
            "breaker",
            "last error",
            "SLA breaches",
        ],
        (
            [
                p["partner"],
                p["in_per_min"],
                p["out_per_min"],
                p["backlog"],
                p["oldest_pending"],
                Html(f"<span class={attr('breaker-' + p['breaker'])}>{esc(p['breaker'])}</span>"),
                p["last_error"],
                p["sla_breaches"],
            ]
            for p in data["partners"]
        ),
        table_id="partners",
        empty="no partners configured",
    )
    services = table(
        ["service", "state", "detail"],
        (
            [
                s["name"],
                Html(f"<span class={attr('state-' + s['state'])}>{esc(s['state'])}</span>"),
                s["detail"],
            ]
            for s in data["services"]
        ),
        table_id="services",
    )
    pager = _pager(
        "/console/",
        {},
        prev=data["page"] - 1 if data["page"] > 1 else None,
        nxt=data["page"] + 1 if data["page"] < data["pages"] else None,
        key="page",
    )
    return Html(
        f'<div id="overview" data-poll-ms={attr(poll_ms)}>'
        f'<p>As of <span id="updated-at">{esc(data["as_of"])}</span>; updates every '
        f"{poll_ms / 1000:g} s. Page {data['page']} of {data['pages']}.</p>"
        f"<h2>Relay, ERP consumers, store</h2>{services}<h2>Partners</h2>{partners}{pager}</div>"
    )


def search_results(
    text: str,
    threads: Sequence[ThreadRow],
    files: Sequence[Mapping[str, Any]],
    controls: Sequence[Mapping[str, Any]],
) -> Html:
    if not text:
        return Html(
            "<p>Search by PO number, message id, correlation id, file name or control number.</p>"
        )
    thread_rows = (
        [
            link(f"/console/threads/{t.id}", t.po_number, thread=str(t.id)),
            t.supplier,
            t.buyer,
            t.status,
            t.correlation_id,
            when(t.updated_at),
        ]
        for t in threads
    )
    file_rows = (
        [
            f["partner"],
            f["path"],
            f["state"],
            f["documents"],
            f["problems"],
            f["reason"],
            when(f["received_at"]),
        ]
        for f in files
    )
    control_rows = (
        [c["direction"], c["partner"], c["detail"], c["correlation_id"], when(c["at"])]
        for c in controls
    )
    out = [
        f"<p>Results for <strong>{esc(text)}</strong>.</p><h2>Threads</h2>",
        table(
            ["PO number", "supplier", "buyer", "status", "correlation id", "updated"],
            thread_rows,
            table_id="threads",
            empty="no thread",
        ),
    ]
    if files:
        out += [
            "<h2>Files</h2>",
            table(
                ["partner", "path", "state", "documents", "problems", "reason", "received"],
                file_rows,
            ),
        ]
    if controls:
        out += [
            "<h2>Control numbers</h2>",
            table(["direction", "partner", "detail", "correlation id", "at"], control_rows),
        ]
    return Html("".join(out))


def thread(trace: ThreadTrace, attempts: Mapping[str, Sequence[DeliveryAttempt]]) -> Html:
    """The thread's page; `attempts` holds the delivery attempts of its messages by id."""
    head = table(
        ["supplier", "PO number", "buyer", "status", "correlation id", "version"],
        [
            [
                trace.supplier,
                trace.po_number,
                trace.buyer,
                trace.status,
                trace.correlation_id,
                trace.version,
            ]
        ],
    )
    entries = table(
        [
            "time (UTC)",
            "hop",
            "hop latency",
            "role",
            "channel",
            "partner",
            "document",
            "message id",
        ],
        _with_attempts(trace, attempts),
        table_id="journal",
        empty="nothing applied yet",
    )
    lines = table(
        ["line", "SKU", "ordered", "acknowledged", "shipped", "received", "invoiced"],
        (
            [
                v.line_number,
                v.sku,
                v.ordered,
                v.acknowledged,
                v.shipped,
                v.received,
                v.invoiced + (" (cancelled)" if v.cancelled else ""),
            ]
            for v in trace.lines
        ),
        empty="no order yet",
    )
    timers = table(
        ["timer", "due (UTC)"],
        ([t["kind"], when(t["due_at"])] for t in trace.timers),
        table_id="timers",
        empty="no open timer",
    )
    excs = table(
        ["kind", "line", "raised (UTC)", "description"],
        (
            [x["kind"], x.get("line_number"), when(x["raised_at"]), x["description"]]
            for x in trace.exceptions
        ),
        table_id="exceptions",
        empty="no open exception",
    )
    parked = f"<p>{trace.parked} input(s) wait for the order.</p>" if trace.parked else ""
    return Html(
        f"{head}<h2>Documents and events, in order</h2>{entries}{parked}<h2>Lines</h2>{lines}"
        f"<h2>Open exceptions</h2>{excs}<h2>Open timers</h2>{timers}"
    )


def dead_letters(
    q: Mapping[str, str], rows: Sequence[Mapping[str, Any]], *, next_after: int | None
) -> Html:
    fields = ("source", "partner", "document", "since", "until")
    inputs = "".join(
        f"<label>{name} <input name={attr(name)} value={attr(q.get(name, ''))}"
        f"{' placeholder=2026-01-01T00:00:00Z' if name in ('since', 'until') else ''}></label>"
        for name in fields
    )
    filters = {k: q[k] for k in fields if q.get(k)}
    body = table(
        [
            Html("<input type=checkbox class=pick-all title='all on this page'>"),
            "id",
            "source",
            "partner",
            "document",
            "message id",
            "died (UTC)",
            "reason",
            "",
        ],
        (
            [
                Html(f"<input type=checkbox class=pick value={attr(r['id'])}>"),
                link(f"/console/dead-letters/{r['id']}", r["id"]),
                r["source"],
                r["partner_id"],
                r["document_type"],
                r["message_id"],
                r["died_at"],
                r["reason"],
                _replay_form({"id": r["id"]}, f"Replay dead letter {r['id']}?", "Replay"),
            ]
            for r in rows
        ),
        table_id="dead-letters",
        empty="no dead letter matches",
    )
    all_matching = (
        _replay_form(
            filters, "Replay EVERY dead letter matching these filters?", "Replay all matching"
        )
        if filters
        else Html("<span>Set a filter to replay all matching.</span>")
    )
    pager = _pager("/console/dead-letters", filters, prev=None, nxt=next_after, key="after")
    return Html(
        f'<form class="filters" method="get" action="/console/dead-letters">{inputs}'
        f'<button type="submit">Filter</button></form>{_FLASH}'
        '<p><button type="button" data-replay-selected '
        'data-action="/console/api/dead-letters/replay">Replay selected</button> '
        f"{all_matching}</p>{body}{pager}"
    )


def dead_letter(shown: Mapping[str, Any]) -> Html:
    detail = shown.get("detail")
    attempts = detail.get("attempts", []) if isinstance(detail, dict) else []
    log = table(
        ["attempted (UTC)", "status", "latency", "error", "answer"],
        (
            [
                when(a["attempted_at"]),
                a["status"],
                _duration(a["latency_s"]),
                a["error"],
                a.get("response_head"),
            ]
            for a in attempts
        ),
        table_id="attempts",
        empty="no attempt log",
    )
    pretty = orjson.dumps(shown.get("body"), option=orjson.OPT_INDENT_2).decode()
    head = {k: v for k, v in shown.items() if k not in ("detail", "body")}
    return Html(
        table(list(head), [list(head.values())])
        + f"{_FLASH}<p>{_replay_form({'id': shown['id']}, 'Replay this dead letter?', 'Replay')}"
        + "</p><h2>Attempt log</h2>"
        + log
        + f"<h2>Body</h2><pre>{esc(pretty)}</pre>"
    )


def deliveries(
    q: Mapping[str, str],
    found: Sequence[DeliveryRecord],
    attempts: Mapping[int, Sequence[DeliveryAttempt]],
) -> Html:
    rows = table(
        [
            "id",
            "message id",
            "document",
            "aggregate",
            "state",
            "attempts",
            "created (UTC)",
            "settled (UTC)",
            "reason",
        ],
        (
            [
                d.id,
                d.message_id,
                d.document_type,
                d.aggregate_key,
                Html(f"<span class={attr('state-' + d.state)}>{esc(d.state)}</span>"),
                d.attempts,
                when(d.created_at),
                when(d.settled_at),
                d.reason,
            ]
            for d in found
        ),
        table_id="deliveries",
        empty="no delivery matches",
    )
    logs = "".join(
        f"<h2>Attempts of delivery {d.id}</h2>"
        + table(
            ["attempted (UTC)", "status", "latency", "error"],
            (
                [when(a.attempted_at), a.status, _duration(a.latency_s), a.error]
                for a in attempts.get(d.id, ())
            ),
            empty="no attempt yet",
        )
        for d in found
        if d.id in attempts
    )
    return Html(f"<p>Partner {esc(q.get('partner'))}</p>{rows}{logs}")


def endpoints(partners: Sequence[str], disabled: Mapping[str, tuple[float, str | None]]) -> Html:
    def action(partner: str) -> Html:
        off = partner in disabled
        verb = "enable" if off else "disable"
        return Html(
            f'<form class="inline" method="post" data-json data-reload '
            f"data-confirm={attr(f'{verb.capitalize()} the endpoint of {partner}?')} "
            f"action={attr(f'/console/api/endpoints/{partner}/{verb}')}>"
            f'<button type="submit" data-partner={attr(partner)}>{verb.capitalize()}</button>'
            "</form>"
        )

    body = table(
        ["partner", "state", "since", "reason", ""],
        (
            [
                link(f"/console/dead-letters{query({'partner': p})}", p),
                Html(
                    f"<span class={attr('state-down' if p in disabled else 'state-up')}>"
                    f"{'disabled' if p in disabled else 'enabled'}</span>"
                ),
                when(disabled[p][0]) if p in disabled else "-",
                disabled[p][1] if p in disabled else "-",
                action(p),
            ]
            for p in partners
        ),
        table_id="endpoints",
        empty="no partner",
    )
    return Html(f"{_FLASH}{body}")


def exceptions(
    q: Mapping[str, str], found: Sequence[Mapping[str, Any]], *, next_before: int | None
) -> Html:
    inputs = "".join(
        f"<label>{name} <input name={attr(name)} value={attr(q.get(name, ''))}></label>"
        for name in ("kind", "partner")
    )
    body = table(
        ["kind", "partner", "PO number", "line", "raised (UTC)", "description"],
        (
            [
                x["kind"],
                x["thread"].supplier,
                link(f"/console/threads/{x['thread'].id}", x["thread"].po_number),
                x.get("line_number"),
                when(x["raised_at"]),
                x["description"],
            ]
            for x in found
        ),
        table_id="open-exceptions",
        empty="no open exception on this page",
    )
    kept = {k: q[k] for k in ("kind", "partner") if q.get(k)}
    pager = _pager("/console/exceptions", kept, prev=None, nxt=next_before, key="before")
    return Html(
        f'<form class="filters" method="get" action="/console/exceptions">{inputs}'
        f'<button type="submit">Filter</button></form>{body}{pager}'
    )


def _with_attempts(
    trace: ThreadTrace, attempts: Mapping[str, Sequence[DeliveryAttempt]]
) -> list[list[object]]:
    """The journal's rows, each message followed by the attempts to deliver it to a partner."""
    rows: list[list[object]] = []
    for e in trace.entries:
        rows.append(
            [
                when(e.at),
                e.hop,
                _duration(e.hop_s),
                e.role,
                e.channel,
                e.partner,
                e.document_type,
                _message(e.partner, e.message_id),
            ]
        )
        for a in attempts.get(e.message_id, ()):
            answer = f"HTTP {a.status}" if a.status is not None else (a.error or "no answer")
            rows.append(
                [
                    when(a.attempted_at),
                    f"{e.document_type} -> {e.partner} endpoint",
                    _duration(a.latency_s),
                    "attempt",
                    "delivery",
                    e.partner,
                    answer,
                    "",
                ]
            )
    return rows


def _message(partner: str | None, message_id: str) -> Html:
    """A message id, linked to its delivery and attempt log when a partner is named."""
    if partner is None:
        return esc(message_id)
    target = query({"partner": partner, "message_id": message_id})
    return link(f"/console/deliveries{target}", message_id)


def _replay_form(body: Mapping[str, Any], confirm: str, label: str) -> Html:
    return Html(
        '<form class="inline" method="post" data-json data-reload '
        f'action="/console/api/dead-letters/replay" data-confirm={attr(confirm)} '
        f"data-body={attr(orjson.dumps(dict(body)).decode())}>"
        f'<button type="submit">{esc(label)}</button></form>'
    )


def _pager(
    base: str, kept: Mapping[str, str], *, prev: int | None, nxt: int | None, key: str
) -> Html:
    links = []
    if prev is not None:
        links.append(link(base + query({**kept, key: prev}), "previous page"))
    if nxt is not None:
        links.append(link(base + query({**kept, key: nxt}), "next page"))
    return Html(f'<p class="pager">{"".join(links)}</p>') if links else Html("")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if abs(seconds) < 1:
        return f"{seconds * 1000:.0f} ms"
    if abs(seconds) < 120:
        return f"{seconds:.1f} s"
    if abs(seconds) < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
