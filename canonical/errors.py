"""The error tree shared by every package: each error carries a machine-readable reason.

HTTP maps these to RFC 9457 problem+json in one place (`protocols.http.problem`); files and
AMQP turn them into dead-letter records with the same reason. `status` is the HTTP status the
error stands for, so the mapping is data, not a chain of `isinstance` checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

__all__ = [
    "ConfigError",
    "DocumentNotAllowed",
    "FieldError",
    "GatewayError",
    "IdempotencyConflict",
    "IdempotencyKeyReused",
    "InvalidDocument",
    "PayloadTooLarge",
    "RateLimited",
    "SignatureInvalid",
    "StoreUnavailable",
    "UnknownPartner",
    "UnsupportedMediaType",
]


class FieldError(tuple[str, str]):
    """One invalid field: (path, message), e.g. ("$.lines[2].quantity", "Expected int")."""

    __slots__ = ()

    def __new__(cls, path: str, message: str) -> FieldError:
        return super().__new__(cls, (path, message))

    @property
    def path(self) -> str:
        return self[0]

    @property
    def message(self) -> str:
        return self[1]


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""

    status: ClassVar[int] = 500
    reason: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str, *, errors: Sequence[FieldError] = ()) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = tuple(errors)


class UnknownPartner(GatewayError):
    status, reason, title = 404, "unknown-partner", "Unknown partner"


class SignatureInvalid(GatewayError):
    status, reason, title = 401, "signature-invalid", "Signature missing, invalid or stale"


class DocumentNotAllowed(GatewayError):
    status, reason, title = 403, "document-not-allowed", "Document not allowed for this partner"


class IdempotencyConflict(GatewayError):
    status, reason, title = 409, "idempotency-conflict", "A request with this key is in flight"


class PayloadTooLarge(GatewayError):
    status, reason, title = 413, "payload-too-large", "Payload too large"


class UnsupportedMediaType(GatewayError):
    status, reason, title = 415, "unsupported-media-type", "Unsupported media type"


class InvalidDocument(GatewayError):
    status, reason, title = 422, "invalid-document", "Invalid document"


class IdempotencyKeyReused(GatewayError):
    status, reason, title = (
        422,
        "idempotency-key-reused",
        "Idempotency key reused with another body",
    )


class RateLimited(GatewayError):
    status, reason, title = 429, "rate-limited", "Too many requests"

    def __init__(self, detail: str, *, retry_after: float) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class StoreUnavailable(GatewayError):
    status, reason, title = 503, "store-unavailable", "Store cannot commit"

    def __init__(self, detail: str, *, retry_after: float = 5.0) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class ConfigError(GatewayError):
    """Invalid configuration; `errors` holds one (path, message) per problem."""

    reason, title = "config-invalid", "Invalid configuration"
