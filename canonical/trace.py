"""The trace fields of the message being handled, for every log line written meanwhile.

`with log_context(message_id=..., correlation_id=..., partner=...):` sets them for the block
(and for tasks started inside it); the log formatter (`gateway.logs`) adds them to each line,
so a courier, the relay or an intake never threads them through every call by hand.

It lives in canonical for the reason `canonical.backoff` does: canonical is the one package
every other may import, and actors, protocols and the gateway all log about messages. One
context variable holding one dict: entering a context costs a dict merge and a `set`, cheaper
than a variable per field (measured against structlog's contextvars in `gateway.logs`).
"""

from __future__ import annotations

import contextvars
from typing import cast

__all__ = ["TraceFields", "log_context", "trace_fields"]

_TRACE: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("trace", default={})  # noqa: B039


class TraceFields:
    """The context manager `log_context` returns (a class: it runs once per request)."""

    __slots__ = ("_fields", "_token")

    def __init__(self, fields: dict[str, str]) -> None:
        self._fields = fields
        self._token: contextvars.Token[dict[str, str]] | None = None

    def __enter__(self) -> None:
        if self._token is not None:
            raise RuntimeError("a log_context() is entered once; call log_context() again")
        current = _TRACE.get()
        self._token = _TRACE.set({**current, **self._fields} if current else self._fields)

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            _TRACE.reset(self._token)
            self._token = None


def log_context(**fields: str | None) -> TraceFields:
    """Attach trace fields (correlation_id, message_id, partner...) to logs inside the block.

    A field given as None is left out (an ERP message without a correlation id).
    """
    if None in fields.values():
        fields = {k: v for k, v in fields.items() if v is not None}
    return TraceFields(cast("dict[str, str]", fields))  # no None left in it


def trace_fields() -> dict[str, str]:
    """Return the trace fields set here now (the same dict each time: do not change it)."""
    return _TRACE.get()
