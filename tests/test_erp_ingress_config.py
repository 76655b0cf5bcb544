"""The `[erp]` section: consumers and subscriptions load, and every mistake is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from canonical.errors import ConfigError
from gateway.config import Secret, load_config

AMQP = '[amqp]\nurl = "amqp://gw:pw@127.0.0.1:5672/%2F"\n'
CONSUMER = """
[[erp.consumers]]
queue = "gateway.erp"
bindings = { "purchase_order.released" = "purchase_order", "item.*" = "item_master" }
"""


def partner(partner_id: str, receives: str = '["purchase_order"]') -> str:
    """A partner that pulls what it receives (a subscription needs a channel to deliver by)."""
    secret, token = Secret.generate().reveal(), Secret.generate().reveal()
    return (
        f'[[partners]]\nid = "{partner_id}"\nname = "{partner_id}"\n'
        f'secrets = ["{secret}"]\nsends = ["invoice"]\nreceives = {receives}\n'
        f'[partners.pull]\ntoken = "{token}"\n'
    )


def subscription(partner_id: str, document: str = "purchase_order", match: str = "") -> str:
    match = match or '{ "supplier.party_id" = "{partner}" }'
    return (
        f'[[erp.subscriptions]]\npartner = "{partner_id}"\ndocument = "{document}"\n'
        f"match = {match}\n"
    )


def write(tmp_path: Path, *parts: str) -> Path:
    path = tmp_path / "gw.toml"
    path.write_text("\n".join([AMQP, *parts]))
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    return [e.message for e in caught.value.errors]


def test_erp_section_loads_consumers_and_subscriptions(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, CONSUMER, subscription("acme"), partner("acme")), {})

    [consumer] = cfg.erp.consumers
    assert (consumer.queue, consumer.exchange) == ("gateway.erp", "erp.events")
    assert consumer.bindings["item.*"] == "item_master"
    [sub] = cfg.erp.subscriptions
    assert (sub.partner, sub.match) == ("acme", {"supplier.party_id": "{partner}"})
    assert sub.resolved_match() == {"supplier.party_id": "acme"}


def test_without_erp_section_nothing_is_consumed(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, partner("acme")), {})

    assert (cfg.erp.consumers, cfg.erp.subscriptions) == ((), ())


def test_subscription_for_an_unknown_partner_is_named(tmp_path: Path) -> None:
    found = problems(write(tmp_path, subscription("acne"), partner("acme")))

    assert found == [
        f"{tmp_path / 'gw.toml'}:5: [erp]: subscriptions[0].partner: unknown partner"
        " (did you mean 'acme'?)"
    ]


def test_subscription_to_a_document_the_partner_does_not_receive_is_named(
    tmp_path: Path,
) -> None:
    found = problems(write(tmp_path, subscription("acme"), partner("acme", receives="[]")))

    assert len(found) == 1
    assert "subscriptions[0].document: partner 'acme' does not receive 'purchase_order'" in found[0]


def test_match_on_a_field_the_document_lacks_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, subscription("acme", match='{ "supplier.code" = "x" }'), partner("acme"))

    [found] = problems(path)

    assert "subscriptions[0]" in found
    assert "'supplier.code': no field 'code'" in found


def test_binding_to_an_unknown_document_type_is_named(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[erp.consumers]]\nqueue = "q"\nbindings = { "po.released" = "purchase_ordr" }\n',
        partner("acme"),
    )

    [found] = problems(path)

    assert "unknown document type 'purchase_ordr' (did you mean 'purchase_order'?)" in found


def test_source_that_is_also_a_partner_id_is_named(tmp_path: Path) -> None:
    [found] = problems(write(tmp_path, '[erp]\nsource = "acme"\n', partner("acme")))

    assert "[erp]: source: 'acme' is also a partner id" in found
