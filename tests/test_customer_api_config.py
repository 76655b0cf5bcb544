"""`[customer_api]` and `[[customers]]`: defaults, secret references, and every rule at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_config import errors_of, partner, unlocated, write

from canonical.errors import RateLimited
from gateway.config import load_config
from gateway.customer_api import AccountBuckets, accounts_of

KEY = "a-customer-api-key-of-enough-length"


def customer(customer_id: str = "acme-retail", *, keys: str = f'["{KEY}"]', extra: str = "") -> str:
    return (
        f'[[customers]]\nid = "{customer_id}"\nname = "{customer_id}"\napi_keys = {keys}\n'
        f'locations = ["DC-EAST"]\nship_tos = ["STORE-1"]\n{extra}\n'
    )


def test_a_customer_api_with_accounts_loads_with_its_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, partner() + "[customer_api]\nport = 0\n" + customer())

    config = load_config(path, {})

    assert config.customer_api is not None
    assert (config.customer_api.host, config.customer_api.max_skus) == ("127.0.0.1", 100)
    [account] = config.customers
    assert account.api_keys[0].reveal() == KEY
    assert KEY not in repr(config)


def test_an_api_key_may_come_from_the_environment(tmp_path: Path) -> None:
    path = write(
        tmp_path, partner() + "[customer_api]\n" + customer(keys='[{ env = "ACME_API_KEY" }]')
    )

    config = load_config(path, {"ACME_API_KEY": KEY})

    assert config.customers[0].api_keys[0].reveal() == KEY


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (customer(), "[customer_api]: [[customers]] need a [customer_api] listener"),
        (
            "[customer_api]\n" + customer(keys='["short"]'),
            "shorter than 24 characters",
        ),
        (
            "[customer_api]\n" + customer("erp"),
            "also a partner's or the ERP's id; choose another",
        ),
        (
            "[customer_api]\n" + customer("acme"),
            "also a partner's or the ERP's id; choose another",
        ),
        (
            "[customer_api]\n" + customer() + customer(),
            "duplicate of customers[0]",
        ),
        (
            "[customer_api]\n" + customer() + customer("globex"),
            "a key of customers[0] too",
        ),
        ("[customer_api]\nmax_skus = 101\n", "max_skus"),
    ],
    ids=[
        "no-listener",
        "short-key",
        "erp-source",
        "partner-id",
        "duplicate-id",
        "shared-key",
        "max-skus",
    ],
)
def test_each_customer_rule_is_reported(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, partner() + text)

    errors = [unlocated(path, e) for e in errors_of(path)]

    assert any(expected in e for e in errors), errors


def test_a_reload_keeps_an_accounts_used_up_rate_limit_unless_the_limit_changed(
    tmp_path: Path,
) -> None:
    limited = "rate_limit = { per_second = 0.001, burst = 1 }\n"
    headers = [(b"x-api-key", KEY.encode())]
    buckets = AccountBuckets()
    before = accounts_of(
        load_config(write(tmp_path, partner() + "[customer_api]\n" + customer(extra=limited)), {}),
        buckets,
    )
    before.authenticate(headers)  # the one call its burst allows

    same = load_config(
        write(tmp_path, partner() + "[customer_api]\n" + customer(extra=limited)), {}
    )
    before.replace(accounts_of(same, buckets))
    with pytest.raises(RateLimited):
        before.authenticate(headers)  # still used up: the reload did not refill it

    raised = limited.replace("burst = 1", "burst = 2")
    changed = load_config(
        write(tmp_path, partner() + "[customer_api]\n" + customer(extra=raised)), {}
    )
    before.replace(accounts_of(changed, buckets))
    assert before.authenticate(headers).id == "acme-retail"  # a new limit, a new bucket
