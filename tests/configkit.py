"""A gateway TOML composed from named sections, so that a test's config says what is special to it.

Each function renders one table (or the tables that belong together) as TOML text; `write`
joins the sections into `gateway.toml`. The base is what every end-to-end test runs with:
listeners on free ports, the store in the test's folder, the broker reconnecting fast.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from test_erp_ingress_gateway import Erp

    from gateway.config import Secret

# The ERP's released purchase orders, the one binding most end-to-end tests need.
PO_RELEASED = {"purchase_order.released": "purchase_order"}
LOOPBACK = '["127.0.0.0/8"]'


def array(items: Sequence[str]) -> str:
    """A TOML array of strings, spaced as the tests' texts are (`["a", "b"]`)."""
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"


def base(
    folder: Path,
    amqp_url: str,
    *,
    http_port: int = 0,
    admin_port: int = 0,
    log_level: str | None = None,
) -> str:
    """[http], [admin], [store] in `folder`, [amqp] reconnecting fast; [log] when a level is set."""
    text = (
        f"[http]\nport = {http_port}\n"
        f"[admin]\nport = {admin_port}\n"
        f'[store]\npath = "{folder / "gateway.db"}"\n'
        f'[amqp]\nurl = "{amqp_url}"\nreconnect_min_s = 0.1\nreconnect_max_s = 1.0\n'
    )
    if log_level is not None:
        text += f'[log]\nlevel = "{log_level}"\n'
    return text


def erp_section(
    erp: Erp,
    subscribers: Sequence[str] = ("acme",),
    *,
    bindings: Mapping[str, str] = PO_RELEASED,
    tuning: str = "",
) -> str:
    """[erp]: one consumer of `erp`'s queue; each subscriber gets the purchase orders it supplies.

    `tuning`: more lines for the consumer's table (prefetch, concurrency).
    """
    routes = ", ".join(f'"{key}" = "{document}"' for key, document in bindings.items())
    text = (
        "[erp]\nrequeue_delay_s = 0.1\n"
        f'[[erp.consumers]]\nqueue = "{erp.queue}"\nexchange = "{erp.exchange}"\n{tuning}'
        f"bindings = {{ {routes} }}\n"
    )
    for partner in subscribers:
        text += (
            f'[[erp.subscriptions]]\npartner = "{partner}"\ndocument = "purchase_order"\n'
            'match = { "supplier.party_id" = "{partner}" }\n'
        )
    return text


def workflow(
    tolerances: Mapping[str, Mapping[str, float]] | None = None, *, enabled: bool = True
) -> str:
    """[workflow] polling its feed fast, with `tolerances` by partner; or switched off."""
    if not enabled:
        return "[workflow]\nenabled = false\n"
    text = "[workflow]\nfeed_poll_s = 0.1\n"
    for partner, settings in (tolerances or {}).items():
        text += f"[workflow.partners.{partner}]\n"
        text += "".join(f"{name} = {value}\n" for name, value in settings.items())
    return text


def partner(
    partner_id: str,
    secrets: Sequence[str],
    *,
    sends: str | Sequence[str],
    receives: Sequence[str] = (),
    name: str | None = None,
    per_second: float | None = 100000.0,
    extra: str = "",
) -> str:
    """A [[partners]] entry: `sends` (names, or a TOML array as text), its rate limit (None: the
    gateway's default), then `extra`: more keys and then its sub-tables ([partners.outbound]...)."""
    sent = sends if isinstance(sends, str) else array(sends)
    text = (
        f'[[partners]]\nid = "{partner_id}"\nname = "{name or partner_id}"\n'
        f"secrets = {array(secrets)}\nsends = {sent}\n"
    )
    if receives:
        text += f"receives = {array(receives)}\n"
    if per_second is not None:
        text += f"rate_limit = {{ per_second = {per_second}, burst = {int(per_second)} }}\n"
    return text + extra


def supplier(channel: str) -> str:
    """A partner's extra lines as a supplier: it receives purchase orders, over `channel`."""
    return 'receives = ["purchase_order"]\n' + channel


def webhook(url: str, secret: Secret) -> str:
    """[partners.outbound]: signed webhooks to `url` on loopback, the default retry schedule."""
    return (
        f'[partners.outbound]\nurl = "{url}"\nsecret = "{secret.reveal()}"\n'
        f"allow_networks = {LOOPBACK}\n"
    )


def outbound_amqp(exchange: str) -> str:
    """[partners.outbound_amqp]: publish to `exchange` on the gateway's broker, retrying fast."""
    return f'[partners.outbound_amqp]\nexchange = "{exchange}"\nretry_schedule_s = [0.1]\n'


def x12_files(folder: Path | None = None) -> str:
    """acme's X12 over files: 855/856/810 taken from `folder` (a local one; None: the table
    for the caller to complete), purchase orders sent as 850s."""
    local = "" if folder is None else f'folder = "{folder}"\npoll_interval_s = 0.1\nsettle_s = 1\n'
    return (
        f"[partners.files]\n{local}"
        '[[partners.files.rules]]\npattern = "*.x12"\ndocument_type = "purchase_order_ack"\n'
        'format = "x12"\n'
        '[partners.x12]\nsender_id = "DISTCO"\nreceiver_id = "ACMESUPPLY"\n'
        '[partners.edi]\nsend_as_x12 = ["purchase_order"]\n'
    )


def compose(*sections: str) -> str:
    """The sections as one TOML text, in order."""
    return "\n".join(sections)


def write(folder: Path, *sections: str) -> Path:
    """Write the sections, in order, as `folder`/gateway.toml and return its path."""
    path = folder / "gateway.toml"
    path.write_text(compose(*sections))
    return path
