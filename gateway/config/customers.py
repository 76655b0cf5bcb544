"""Customer accounts and the customer API listener: `[customer_api]` and `[[customers]]`.

A customer is an account of the customer API (protocols/http/api/): its API keys (secret
references, like partners' secrets: inline, `{ env = ... }` or `{ file = ... }`; the gateway
keeps only their SHA-256 and compares in constant time), the locations whose availability it
may read, the ship-tos it may order to, and its rate limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import msgspec

from gateway.config.base import (
    MIB,
    Base,
    BodyBytes,
    Count,
    Host,
    Name,
    Port,
    Problem,
    Seconds,
    known,
)
from gateway.config.partners import PARTNER_ID_PATTERN, RateLimit
from gateway.config.secrets import Password

__all__ = [
    "MAX_API_KEYS",
    "MAX_SKUS_PER_QUERY",
    "MIN_API_KEY_CHARS",
    "CustomerApiSettings",
    "CustomerConfig",
]

# Rotation keeps the old and the new key live together, as with partners' secrets.
MAX_API_KEYS = 2
# Below this an API key can be guessed; `secrets.token_urlsafe(32)` gives 43.
MIN_API_KEY_CHARS = 24
# The availability endpoint's ceiling (issue 20): one query reads at most this many SKUs.
MAX_SKUS_PER_QUERY = 100
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=35)]


class CustomerApiSettings(Base, frozen=True):
    """The customer API's own listener (`/api/v1`), apart from partners' webhooks and admin."""

    host: Host = "127.0.0.1"
    port: Port = 8082
    # SKUs per availability query (the bound is 100; a lower one is allowed).
    max_skus: Annotated[int, msgspec.Meta(ge=1, le=MAX_SKUS_PER_QUERY)] = MAX_SKUS_PER_QUERY
    # An order body past this is refused before it is read whole.
    max_body_bytes: BodyBytes = MIB // 4
    max_lines: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 500
    # The largest quantity one order line may ask for.
    max_quantity: Annotated[int, msgspec.Meta(ge=1)] = 1_000_000
    # An order whose status has not changed for this long is shown with `stale: true`.
    status_stale_after_s: Seconds = 3600.0
    # How often the order status feed reads new `order_status` documents, and how many a pass.
    status_poll_interval_s: Seconds = 1.0
    status_batch: Count = 500
    # SKUs customers may order; empty takes any SKU (the ERP decides).
    items: frozenset[Annotated[str, msgspec.Meta(min_length=1, max_length=48)]] = frozenset()


class CustomerConfig(Base, frozen=True, kw_only=True):
    """One customer account of the customer API."""

    id: Annotated[str, msgspec.Meta(pattern=PARTNER_ID_PATTERN)]
    name: Name
    # One live key, or two while rotating. Any text of MIN_API_KEY_CHARS or more.
    api_keys: Annotated[tuple[Password, ...], msgspec.Meta(min_length=1, max_length=MAX_API_KEYS)]
    # Locations whose availability the account may read; empty reads none.
    locations: tuple[Code, ...] = ()
    # Where the account may have orders shipped: at least one.
    ship_tos: Annotated[tuple[Code, ...], msgspec.Meta(min_length=1)]
    rate_limit: RateLimit = RateLimit(per_second=20.0, burst=40)

    def problems(self) -> Iterator[Problem]:
        with known():
            for i, key in enumerate(self.api_keys):
                if len(key.reveal()) < MIN_API_KEY_CHARS:
                    yield f"api_keys[{i}]", f"shorter than {MIN_API_KEY_CHARS} characters"


def customer_problems(
    customers: tuple[CustomerConfig, ...],
    api: CustomerApiSettings | None,
    partner_ids: set[str],
) -> Iterator[Problem]:
    """Yield the rules across `[[customers]]`, `[customer_api]` and the partners (and the
    ERP's source, whose id `partner_ids` holds too)."""
    with known():
        if customers and api is None:
            yield "customer_api", "[[customers]] need a [customer_api] listener"
    seen: dict[str, int] = {}
    keys: dict[str, int] = {}
    for i, customer in enumerate(customers):
        with known():
            j = seen.setdefault(customer.id, i)
            if j != i:
                yield f"customers[{i}].id", f"duplicate of customers[{j}]"
            elif customer.id in partner_ids:
                # Orders are kept in the inbox under the account id, as partners' requests are
                # (and the ERP's messages under its source): one scope per sender.
                yield f"customers[{i}].id", "also a partner's or the ERP's id; choose another"
        with known():
            for key in customer.api_keys:
                k = keys.setdefault(key.reveal(), i)
                if k != i:
                    yield f"customers[{i}].api_keys", f"a key of customers[{k}] too"
