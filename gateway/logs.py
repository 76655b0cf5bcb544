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
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import orjson

__all__ = ["JsonFormatter", "configure_logging", "log_context"]

_TRACE: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("trace", default={})  # noqa: B039

_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message"}


@contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Attach trace fields (correlation_id, message_id, partner...) to logs inside the block."""
    merged = {**_TRACE.get(), **{k: v for k, v in fields.items() if v is not None}}
    token = _TRACE.set(merged)
    try:
        yield
    finally:
        _TRACE.reset(token)


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
