"""A tiny HTML helper for the console's pages: escaped text, tables, the page frame.

Every value that reaches a page goes through `esc` (or `attr` for attribute values); the only
markup built from strings is the markup this module writes. No template engine: the pages are
a handful of tables and forms, and f-strings with one escape function keep every hole visible.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import urlencode

__all__ = ["Html", "attr", "esc", "link", "page", "query", "table", "when"]


class Html(str):
    """Markup this module (or a page) built: `esc` leaves it as it is."""

    __slots__ = ()


def esc(value: object) -> Html:
    """Escape `value` for an HTML text node or a quoted attribute; markup passes unchanged."""
    if isinstance(value, Html):
        return value
    return Html(html.escape("" if value is None else str(value), quote=True))


def attr(value: object) -> Html:
    """An attribute value (quoted): `<a href={attr(url)}>`."""
    return Html(f'"{esc(value)}"')


def link(href: str, text: object, **data: str) -> Html:
    extra = "".join(f" data-{k.replace('_', '-')}={attr(v)}" for k, v in data.items())
    return Html(f"<a href={attr(href)}{extra}>{esc(text)}</a>")


def query(params: Mapping[str, object]) -> str:
    """`?a=1&b=2` for the parameters that have a value ("" when none has)."""
    kept = {k: str(v) for k, v in params.items() if v not in (None, "")}
    return f"?{urlencode(kept)}" if kept else ""


def when(unix: float | None) -> Html:
    """A time as ISO 8601 UTC to the millisecond, in a `<time>` element ("-" when None)."""
    if unix is None:
        return Html("-")
    iso = dt.datetime.fromtimestamp(unix, dt.UTC).isoformat(timespec="milliseconds")
    return Html(f"<time datetime={attr(iso)}>{esc(iso[:23].replace('T', ' '))}</time>")


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    table_id: str = "",
    empty: str = "nothing here",
) -> Html:
    """A table; cells are escaped unless they are `Html`."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    if not body:
        body = f'<tr class="empty"><td colspan="{len(headers)}">{esc(empty)}</td></tr>'
    ident = f" id={attr(table_id)}" if table_id else ""
    return Html(f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


_NAV = (
    ("/console/", "Overview"),
    ("/console/dead-letters", "Dead letters"),
    ("/console/endpoints", "Endpoints"),
    ("/console/exceptions", "Exceptions"),
)


def page(title: str, body: Html, *, csrf: str, current: str = "", search: str = "") -> bytes:
    """The whole page: head, navigation with the search box, `body`; as UTF-8 bytes.

    Scripts and styles come from /console/static only (the Content-Security-Policy forbids
    inline ones); the CSRF token rides in a meta tag for the script's POSTs.
    """
    nav = "".join(
        f"<a href={attr(href)}{' class=current' if href == current else ''}>{esc(name)}</a>"
        for href, name in _NAV
    )
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)} - partner-gateway</title>"
        f'<meta name="csrf-token" content={attr(csrf)}>'
        '<link rel="stylesheet" href="/console/static/console.css">'
        '<script src="/console/static/console.js" defer></script>'
        "</head><body>"
        f"<header><strong>partner-gateway</strong><nav>{nav}</nav>"
        '<form class="search" method="get" action="/console/search">'
        f'<input name="q" id="search" value={attr(search)} '
        'placeholder="PO number, message id, correlation id, file name, control number">'
        '<button type="submit">Find</button></form>'
        '<form method="post" action="/console/logout" class="logout" data-json>'
        '<button type="submit">Log out</button></form></header>'
        f"<main><h1>{esc(title)}</h1>{body}</main></body></html>"
    ).encode()
