"""A partner's `outbound` table: defaults from Standard Webhooks, every problem reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import Secret, check_config, load_config
from gateway.config.delivery import STANDARD_WEBHOOKS_RETRY_SCHEDULE_S

PARTNER = """
[amqp]
url = "amqp://gw:pw@127.0.0.1:5672/%2F"

[[partners]]
id = "acme"
name = "Acme"
secrets = ["{inbound}"]
sends = ["invoice"]
[partners.outbound]
"""


def write(tmp_path: Path, outbound: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(PARTNER.format(inbound=Secret.generate().reveal()) + outbound)
    return path


def test_an_outbound_table_with_only_url_and_secret_takes_the_standard_defaults(
    tmp_path: Path,
) -> None:
    secret = Secret.generate()
    path = write(tmp_path, f'url = "https://hooks.acme.example/in"\nsecret = "{secret.reveal()}"\n')
    outbound = load_config(path, {}).partners[0].outbound

    assert outbound is not None
    assert outbound.secret == secret
    assert outbound.timeout_s == 15.0
    assert outbound.retry_schedule_s == STANDARD_WEBHOOKS_RETRY_SCHEDULE_S
    assert outbound.allow_networks == ()


def test_every_problem_of_the_outbound_table_is_reported_with_its_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'url = "https://hooks.acme.example/in"\n'
        'secret = "whsec_short"\n'
        "timeout_s = 0\n"
        "retry_schedule_s = [5, -1]\n",
    )
    code, lines = check_config(path, {})

    assert code == 1
    assert [line.split(": ")[2] for line in lines] == [
        "outbound.secret",
        "outbound.timeout_s",
        "outbound.retry_schedule_s[1]",
    ]


def test_a_url_that_is_not_http_and_a_network_that_is_not_cidr_are_refused(
    tmp_path: Path,
) -> None:
    secret = Secret.generate().reveal()
    bad_url = write(tmp_path, f'url = "ftp://acme.example/"\nsecret = "{secret}"\n')
    code_url, lines_url = check_config(bad_url, {})
    bad_net = write(
        tmp_path,
        f'url = "http://acme.example/"\nsecret = "{secret}"\nallow_networks = ["10.0.0.0/33"]\n',
    )
    code_net, lines_net = check_config(bad_net, {})

    assert (code_url, code_net) == (1, 1)
    assert "outbound.url" in lines_url[0]
    assert "outbound.allow_networks" in lines_net[0]


@pytest.mark.parametrize(
    ("table", "keys"),
    [
        ("outbound", 'url = "https://hooks.acme.example/in"\nsecret = "{secret}"\n'),
        ("outbound_amqp", 'exchange = "acme.inbound"\n'),
    ],
)
def test_the_delivery_rules_are_the_same_keys_checked_the_same_in_every_channel_table(
    tmp_path: Path, table: str, keys: str
) -> None:
    secret = Secret.generate().reveal()
    rules = "retry_schedule_s = [5, -1]\njitter = 1.5\nmax_retry_after_s = 60\n"
    path = tmp_path / "gateway.toml"
    path.write_text(
        PARTNER.format(inbound=secret).replace("[partners.outbound]\n", f"[partners.{table}]\n")
        + keys.format(secret=secret)
        + rules
    )
    code, lines = check_config(path, {})

    assert code == 1
    assert [line.split(": ")[2] for line in lines] == [
        f"{table}.retry_schedule_s[1]",
        f"{table}.jitter",
    ]
