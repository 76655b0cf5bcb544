"""Structured JSON logs: one line per event, carrying the message's trace fields when known.

`correlation_id`, `message_id` and `partner` live in context variables set with `log_context()`;
every record logged inside that context carries them, so an actor or the relay never threads
them through by hand. Extra fields go in `extra={"fields": {...}}`.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import time
from typing import Any, TextIO

import orjson

__all__ = ["JsonFormatter", "configure_logging", "log_context"]

_TRACE: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("trace", default={})  # noqa: B039

_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message"}


class _TraceFields:
    """The context manager `log_context` returns (a class: it runs once per request)."""

    __slots__ = ("_fields", "_token")

    def __init__(self, fields: dict[str, str | None]) -> None:
        self._fields = fields
        self._token: contextvars.Token[dict[str, str]] | None = None

    def __enter__(self) -> None:
        if self._token is not None:
            raise RuntimeError("a log_context() is entered once; call log_context() again")
        merged = {**_TRACE.get(), **{k: v for k, v in self._fields.items() if v is not None}}
        self._token = _TRACE.set(merged)

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            _TRACE.reset(self._token)
            self._token = None


def log_context(**fields: str | None) -> _TraceFields:
    """Attach trace fields (correlation_id, message_id, partner...) to logs inside the block."""
    return _TraceFields(fields)


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        entry.update(_TRACE.get())
        fields = record.__dict__.get("fields")
        if isinstance(fields, dict):
            entry.update(fields)
        for key, value in record.__dict__.items():
            if key not in _RESERVED and key != "fields":
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str = "info", *, stream: TextIO | None = None) -> None:
    """Send every log record to `stream` (stderr by default) as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiormq", "aio_pika", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
