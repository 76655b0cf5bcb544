"""Customer accounts as the API sees them: who a key belongs to, what it may read and order.

Keys are kept as SHA-256 digests only and compared with every account's in constant time
(`hmac.compare_digest`), so neither the key nor which account it nearly matched leaks by
timing. The gateway builds `Account`s from `[[customers]]` (gateway/customer_api.py).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence

from msgspec import Struct

from canonical.errors import RateLimited

from ..routing import Forbidden, Unauthenticated

__all__ = ["Account", "Accounts", "key_digest"]

# The header customers send their key in: `Authorization: Bearer <key>` works too.
API_KEY_HEADER = b"x-api-key"


def key_digest(key: str | bytes) -> bytes:
    """The digest an API key is kept and compared as."""
    return hashlib.sha256(key.encode() if isinstance(key, str) else key).digest()


class Account(Struct, frozen=True, kw_only=True):
    """One customer account: key digests, the locations it reads, the ship-tos it orders to."""

    id: str
    key_digests: tuple[bytes, ...]
    locations: frozenset[str]
    ship_tos: frozenset[str]

    def may_read(self, location_id: str) -> None:
        """Raise 403 unless the account may read availability at `location_id`."""
        if location_id not in self.locations:
            raise Forbidden(f"location {location_id[:40]!r} is not among the account's")


class Accounts:
    """Find the account a request's key belongs to, and take a token from its rate limit.

    `limiter(account_id)` answers the seconds to wait before the account may call again (0
    when it may now): the rule lives with the gateway's other rate limits (actors/ratelimit).
    """

    def __init__(self, accounts: Sequence[Account], limiter: Callable[[str], float]) -> None:
        self._accounts = tuple(accounts)
        self._limiter = limiter

    def replace(self, accounts: Accounts) -> None:
        """Take `accounts`' keys and limits (a reloaded configuration's); a request already
        authenticated keeps the account it found."""
        self._accounts, self._limiter = accounts._accounts, accounts._limiter

    def authenticate(self, headers: Sequence[tuple[bytes, bytes]]) -> Account:
        """Return the account whose key the request carries; 401 without one, 429 past its
        rate limit."""
        key = _presented_key(headers)
        if key is None:
            raise Unauthenticated("send the API key as X-API-Key or Authorization: Bearer")
        digest = key_digest(key)
        found: Account | None = None
        for account in self._accounts:  # every digest compared, found or not
            for kept in account.key_digests:
                if hmac.compare_digest(kept, digest) and found is None:
                    found = account
        if found is None:
            raise Unauthenticated("the API key belongs to no account")
        wait = self._limiter(found.id)
        if wait:
            raise RateLimited(f"account {found.id!r} is over its rate limit", retry_after=wait)
        return found


def _presented_key(headers: Sequence[tuple[bytes, bytes]]) -> bytes | None:
    for name, value in headers:
        if name == API_KEY_HEADER and value:
            return value.strip()
        if name == b"authorization" and value[:7].lower() == b"bearer " and value[7:].strip():
            return value[7:].strip()
    return None
