"""The rules across sections: what makes a file unable to work though each table is valid.

`whole_config_problems` is `GatewayConfig.problems`. It reads the config, or its Draft while the
loader checks a file in which some table did not build; each rule yields (path from the root,
message) and is skipped, alone, when it reads a field that failed (`known()`). That is why a
partner whose secret is missing is still a known partner to the subscriptions naming it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from gateway.config.base import Problem, Unknown, join_host_port, known
from gateway.config.partners import channel_of
from gateway.config.tables import did_you_mean

if TYPE_CHECKING:
    from gateway.config.settings import GatewayConfig

__all__ = ["whole_config_problems"]

# Hosts a listener binds on every address with: any other listener on its port clashes.
_WILDCARDS = frozenset({"0.0.0.0", "::", "*", ""})
_NO_CHANNEL = "has no outbound, outbound_amqp or pull table"
_OWN_EXCHANGES = {
    "dead_letter_exchange": "the dead-letter exchange",
    "events_exchange": "the gateway's own events exchange",
}


def whole_config_problems(cfg: GatewayConfig) -> Iterator[Problem]:
    """Yield every rule across sections that `cfg` breaks, each with its path from the root."""
    for rule in (
        _partners_present,
        _partner_ids_unique,
        _partners_take_part,
        _secrets_unshared,
        _bodies_under_ceiling,
        _listeners_apart,
        _erp_source_not_a_partner,
        _subscriptions_reach_partners,
        _exchanges_not_the_gateways_own,
        _workflow_partners_known,
        _workflow_reads_erp_events,
        _hosted_partners_have_a_drop_box,
    ):
        yield from rule(cfg)


def _partners_present(cfg: GatewayConfig) -> Iterator[Problem]:
    with known():
        if not cfg.partners:
            yield "partners", "no partners: the gateway would accept nothing"


def _partner_ids_unique(cfg: GatewayConfig) -> Iterator[Problem]:
    with known():
        first: dict[str, int] = {}  # partner id -> index of its first entry
        for i, partner in enumerate(cfg.partners):
            with known():
                j = first.setdefault(partner.id, i)
                if j != i:
                    yield f"partners[{i}].id", f"duplicate of partners[{j}]"


def _partners_take_part(cfg: GatewayConfig) -> Iterator[Problem]:
    # A partner may send only what `sends` names, and receives only by a channel: with neither,
    # its table configures nothing.
    with known():
        for i, partner in enumerate(cfg.partners):
            with known():
                if partner.sends:
                    continue
                if channel_of(partner) is None:
                    yield (
                        f"partners[{i}].sends",
                        (f"empty, and the partner {_NO_CHANNEL}: it can neither send nor receive"),
                    )
                elif not partner.receives:
                    yield (
                        f"partners[{i}].sends",
                        ("empty, and so is receives: it can neither send nor receive"),
                    )


def _secrets_unshared(cfg: GatewayConfig) -> Iterator[Problem]:
    # One partner's secret in another's hands would let it sign as the other.
    with known():
        partners = cfg.partners
        owner: dict[bytes, tuple[int, int]] = {}  # HMAC key -> (partner index, secret index)
        for i, partner in enumerate(partners):
            with known():
                for k, secret in enumerate(partner.secrets):
                    j, m = owner.setdefault(secret.key, (i, k))
                    if (j, m) != (i, k):
                        of = "" if j == i else f" of {_name(partners[j], j)}"
                        yield f"partners[{i}].secrets[{k}]", f"same secret as secrets[{m}]{of}"


def _bodies_under_ceiling(cfg: GatewayConfig) -> Iterator[Problem]:
    with known():
        ceiling = cfg.http.max_body_bytes
        for i, partner in enumerate(cfg.partners):
            with known():
                if partner.max_body_bytes > ceiling:
                    yield (
                        f"partners[{i}].max_body_bytes",
                        (f"above [http] max_body_bytes ({ceiling})"),
                    )


def _listeners_apart(cfg: GatewayConfig) -> Iterator[Problem]:
    with known():
        http, admin = cfg.http, cfg.admin
        if admin.port and admin.port == http.port and _overlap(admin.host, http.host):
            address = join_host_port(http.host, http.port)
            yield "admin.port", f"clashes with [http] ({address}); the second bind would fail"
    with known():
        box = cfg.sftp_dropbox
        if box is not None and box.port:
            for section, other in (("http", cfg.http), ("admin", cfg.admin)):
                with known():
                    if box.port == other.port and _overlap(box.host, other.host):
                        address = join_host_port(other.host, other.port)
                        yield "sftp_dropbox.port", f"clashes with [{section}] ({address})"


def _erp_source_not_a_partner(cfg: GatewayConfig) -> Iterator[Problem]:
    # ERP keys and that partner's webhook keys would share one idempotency scope.
    with known():
        if cfg.erp.source in _known_ids(cfg.partners)[0]:
            yield "erp.source", f"{cfg.erp.source!r} is also a partner id"


def _subscriptions_reach_partners(cfg: GatewayConfig) -> Iterator[Problem]:
    with known():
        by_id, every_id_known = _known_ids(cfg.partners)
        for i, subscription in enumerate(cfg.erp.subscriptions):
            at = f"erp.subscriptions[{i}]"
            with known():
                partner = by_id.get(subscription.partner)
                if partner is None:
                    # A partner whose id did not load may be the one named: say nothing then.
                    if every_id_known:
                        hint = did_you_mean(subscription.partner, by_id)
                        yield f"{at}.partner", f"unknown partner{hint}"
                    continue
                with known():
                    if subscription.document not in partner.receives:
                        yield (
                            f"{at}.document",
                            (f"partner {partner.id!r} does not receive {subscription.document!r}"),
                        )
                with known():
                    # X12 files are a channel too, for the documents sent as such.
                    as_files = subscription.document in partner.edi.send_as_x12
                    if channel_of(partner) is None and not as_files:
                        yield (
                            f"{at}.partner",
                            (
                                f"partner {partner.id!r} {_NO_CHANNEL}: "
                                "its messages would wait for ever"
                            ),
                        )


def _exchanges_not_the_gateways_own(cfg: GatewayConfig) -> Iterator[Problem]:
    # The gateway publishes its events and parks its dead letters there: consuming from either
    # loops messages back in, publishing a partner's messages there mixes them with its own.
    own: dict[str, str] = {}  # exchange name -> what it is
    for field, what in _OWN_EXCHANGES.items():
        with known():
            own[getattr(cfg.amqp, field)] = f"{what} ([amqp] {field})"
    with known():
        for i, consumer in enumerate(cfg.erp.consumers):
            with known():
                if consumer.exchange in own:
                    what = own[consumer.exchange]
                    yield f"erp.consumers[{i}].exchange", f"{what}; consume the ERP's exchange"
    with known():
        for i, partner in enumerate(cfg.partners):
            with known():
                channel = partner.outbound_amqp
                if channel is not None and channel.url is None and channel.exchange in own:
                    what = own[channel.exchange]
                    yield (
                        f"partners[{i}].outbound_amqp.exchange",
                        (f"{what}, on the same broker; name the partner's exchange"),
                    )


def _workflow_partners_known(cfg: GatewayConfig) -> Iterator[Problem]:
    # A supplier's tolerances under an id no partner has would apply to nobody.
    with known():
        by_id, every_id_known = _known_ids(cfg.partners)
        for partner_id in cfg.workflow.partners:
            if every_id_known and partner_id not in by_id:
                hint = did_you_mean(partner_id, by_id)
                yield f"workflow.partners.{partner_id}", f"unknown partner{hint}"


def _workflow_reads_erp_events(cfg: GatewayConfig) -> Iterator[Problem]:
    # The threads read the ERP's orders from the outbox rows that setting writes. A file
    # without [workflow] is not held to it: the loader turns the threads off there instead.
    with known():
        if cfg.workflow.enabled and not cfg.erp.publish_events:
            yield "workflow.enabled", "needs [erp] publish_events = true (or enabled = false)"


def _known_ids(partners: Any) -> tuple[dict[str, Any], bool]:
    """Return {id: partner} of the partners whose id loaded, and whether every id did."""
    by_id: dict[str, Any] = {}
    every_id_known = True
    for partner in partners:
        try:
            by_id.setdefault(partner.id, partner)
        except Unknown:
            every_id_known = False
    return by_id, every_id_known


def _name(partner: Any, index: int) -> str:
    try:
        return f"partner {partner.id!r}"
    except Unknown:
        return f"partners[{index}]"


def _overlap(host: str, other: str) -> bool:
    """Whether two listeners on one port would both bind some address."""
    if host in _WILDCARDS or other in _WILDCARDS:
        return True
    return bool(_addresses(host) & _addresses(other))


def _addresses(host: str) -> set[str]:
    if host == "localhost":
        return {"127.0.0.1", "::1"}
    try:
        return {str(ipaddress.ip_address(host))}
    except ValueError:
        return {host.lower()}


def _hosted_partners_have_a_drop_box(cfg: GatewayConfig) -> Iterator[Problem]:
    # A hosted folder is served by the gateway's drop box: without one, nobody could log in.
    with known():
        if cfg.sftp_dropbox is not None:
            return
        for i, partner in enumerate(cfg.partners):
            with known():
                if partner.sftp is not None and partner.sftp.hosted is not None:
                    yield f"partners[{i}].sftp.hosted", "no [sftp_dropbox] section to host it"
