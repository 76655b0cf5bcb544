"""Structured JSON logs: one line per event, carrying the message's trace fields when known.

`correlation_id`, `message_id` and `partner` live in a context variable set with
`log_context()` (`canonical.trace`); every record logged inside that context carries them, so
an actor or the relay never threads them through by hand. Extra fields go in
`extra={"fields": {...}}` or straight in `extra`.

The stdlib's logging with one context variable, not structlog: measured with timeit (3 ids in
the context), entering and leaving the context costs a quarter of structlog's contextvars, and
the webhook path enters one on every request whether or not it logs. See the commit that made
this choice for the figures.

Libraries log through the same handler, minus their noise: httpx's line per request, uvicorn's
start/stop lines (one per listener, with ANSI colour codes in `color_message`), aiormq's and
aio-pika's chatter; their warnings and errors still come through.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, TextIO

import orjson

from canonical.trace import log_context, trace_fields

__all__ = ["JsonFormatter", "configure_logging", "log_context"]

# Attributes every LogRecord has: anything else on a record came in through `extra`.
_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message"}
# Never copied into a line: `fields` is merged on its own; uvicorn's `color_message` is its
# event again with ANSI colour codes for a terminal.
_SKIPPED = _RESERVED | {"fields", "color_message"}
_LEVELS = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
    logging.CRITICAL: "critical",
}
# Loggers whose INFO lines say nothing an operator needs; at WARNING their problems still show.
QUIET_LOGGERS = ("httpx", "httpcore", "uvicorn", "aiormq", "aio_pika")


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object on one line."""

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._second_text = ""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self._timestamp(record),
            "level": _LEVELS.get(record.levelno) or record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        entry.update(trace_fields())
        attributes = record.__dict__
        fields = attributes.get("fields")
        if isinstance(fields, dict):
            entry.update(fields)
        for key in attributes.keys() - _SKIPPED:
            entry[key] = attributes[key]
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()

    def _timestamp(self, record: logging.LogRecord) -> str:
        # strftime once a second, not once a line.
        second = int(record.created)
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._second_text}.{int(record.msecs):03d}Z"


def configure_logging(level: str = "info", *, stream: TextIO | None = None) -> None:
    """Send every log record to `stream` (stderr by default) as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The lines carry none of the caller's file and line, thread or process: not collecting
    # them halves the cost of a line (the logging HOWTO's "Optimization" table names these).
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
