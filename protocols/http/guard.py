"""The listener's own defences: deadlines for heads and bodies, head size, requests and connections.

uvicorn reads whatever a client sends for as long as it sends it: a connection that never
finishes its head holds its slot for ever, a header value grows in memory without bound, and its
`limit_concurrency` counts idle connections too, so a thousand silent sockets make every partner
get 503. `guarded_protocol(limits)` returns uvicorn's httptools protocol with these rules added;
`serve()` passes it as uvicorn's `http` option. Every refusal is problem+json (RFC 9457) and, when
the connection cannot be trusted further, closes it.

- **Head deadline** (`head_timeout_s`): a request's line and headers must arrive within this
  time of the connection opening, or of the request's first byte on a kept-alive connection
  (the idle gap between requests is uvicorn's keep-alive timeout). Past it: 408 when part of a
  head arrived, a silent close when nothing did, as for an idle keep-alive connection.
- **Body deadline** (`body_timeout_s`, `body_min_bytes_per_s`): after the head, the body gets
  `body_timeout_s`, plus one second for every `body_min_bytes_per_s` bytes that arrive (Apache
  mod_reqtimeout's `body=10,MinRate=...`). A flat deadline would either cut off a large body on
  a slow link or give a trickle of a small one the whole time; a rate costs an attacker
  bandwidth for every slot held, and a partner's upload is never cut while it keeps the rate.
  While the server itself is not reading (the app has not taken what is buffered), the clock
  starts over: the client cannot be late then. Past it: 408, unless the response has begun.
- **Head size** (`max_head_bytes`, `max_headers`): the bytes of a head are counted per read,
  before the parser sees them, and only the part within the limit is parsed, so an endless
  header is refused with 431 once the limit is reached instead of being buffered (httptools
  joins a header's pieces in memory until the header ends). The count of headers is checked
  when the head is complete: the byte limit already bounds the memory they take. A chunked
  body's trailer section is a second head that httptools buffers the same way: reads that
  bring no body data after a chunk header count against `max_head_bytes` too (431).
- **Requests in flight** (`max_requests`): complete heads whose app has not finished; past it
  503 with Retry-After at once, the body left unread (and discarded by the parser). Connections
  that are idle or still sending a head do not count, so they cannot starve partners.
- **Connections** (`max_connections`): past the ceiling, a new connection closes the connection
  that has waited longest without a request in flight (nginx's reuse of keep-alive connections
  when it runs out); when every connection has a request in flight, the new one is closed.

The hot path (one request in one read on a kept-alive connection) arms no timer: it adds two
callbacks' frames, a dict pop and insert (the idle set) and a few attribute reads, about 4,600
CPU instructions a request over uvicorn's own protocol (valgrind, uvloop, a trivial app: 146,000
a request). A new connection arms one timer, cancelled when its first head is complete; a head
or body that spans reads arms one.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar, NamedTuple

import httptools
import msgspec
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from canonical.errors import GatewayError

from .asgi import Receive, Scope, Send, send_response
from .problem import BadRequest, problem_response

__all__ = [
    "BUSY_RETRY_AFTER_S",
    "HeadTooLarge",
    "ListenerLimits",
    "RequestTimeout",
    "ServerBusy",
    "guarded_protocol",
]

logger = logging.getLogger(__name__)

KIB = 1024
#: Seconds a 503 asks the client to wait: requests in flight finish within a request's latency.
BUSY_RETRY_AFTER_S = 1


class ListenerLimits(msgspec.Struct, frozen=True, kw_only=True):
    """The bounds one listener enforces; the gateway builds them from its `[http]` settings."""

    head_timeout_s: float = 5.0
    body_timeout_s: float = 10.0
    body_min_bytes_per_s: int = 16 * KIB
    max_head_bytes: int = 32 * KIB
    max_headers: int = 100
    max_requests: int = 1024
    max_connections: int = 10_000

    def __post_init__(self) -> None:
        # The gateway's config bounds these already; this catches a listener built in code.
        for name in self.__struct_fields__:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be positive")


class RequestTimeout(GatewayError):
    """The request's head or body did not arrive in time."""

    status, reason, title = 408, "request-timeout", "Request timeout"


class HeadTooLarge(GatewayError):
    """The request's head is over the listener's size or header-count limit."""

    status, reason, title = 431, "request-head-too-large", "Request header fields too large"


class ServerBusy(GatewayError):
    """Too many requests in flight; retry after `retry_after` seconds."""

    status, reason, title = 503, "server-busy", "Server busy"

    def __init__(self, detail: str, *, retry_after: float) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class _Answer(NamedTuple):
    """A raw HTTP/1.1 answer that closes the connection; the Date header goes between the parts."""

    status_line: bytes
    rest: bytes
    detail: str


def _closing_answer(error: GatewayError) -> _Answer:
    """Return the problem+json answer to `error`, with `Connection: close`."""
    status, headers, body = problem_response(error, instance=None)
    lines = [name + b": " + value + b"\r\n" for name, value in headers]
    lines.append(b"content-length: %d\r\n" % len(body))
    lines.append(b"connection: close\r\n\r\n")
    return _Answer(STATUS_LINE[status], b"".join(lines) + body, f"{status} {error.detail}")


class _Refused(Exception):
    """Raised from a parser callback to stop parsing; the answer has been written already."""


class _Listener:
    """What the connections of one listener share: its limits and its idle connections."""

    def __init__(self, limits: ListenerLimits) -> None:
        self.limits = limits
        # Read on every request: plain attributes of this object are the fastest to reach.
        self.max_head_bytes = limits.max_head_bytes
        self.max_headers = limits.max_headers
        self.max_requests = limits.max_requests
        # Connections without a request in flight, longest-waiting first: eviction candidates.
        self.idle: dict[GuardedProtocol, None] = {}
        self.head_timeout = _closing_answer(
            RequestTimeout(f"the request head did not arrive within {limits.head_timeout_s} s")
        )
        self.body_timeout = _closing_answer(
            RequestTimeout(
                f"the request body did not arrive within {limits.body_timeout_s} s plus 1 s "
                f"per {limits.body_min_bytes_per_s} bytes"
            )
        )
        self.head_too_large = _closing_answer(
            HeadTooLarge(f"the request head exceeds {limits.max_head_bytes} bytes")
        )
        self.trailers_too_large = _closing_answer(
            HeadTooLarge(f"the request's trailer section exceeds {limits.max_head_bytes} bytes")
        )
        self.too_many_headers = _closing_answer(
            HeadTooLarge(f"the request has more than {limits.max_headers} header fields")
        )
        self.bad_request = _closing_answer(BadRequest("the request is not valid HTTP/1.1"))
        status, headers, body = problem_response(
            ServerBusy(
                f"more than {limits.max_requests} requests in flight",
                retry_after=BUSY_RETRY_AFTER_S,
            ),
            instance=None,
        )

        async def busy(scope: Scope, receive: Receive, send: Send) -> None:
            # The body is left unread: the parser discards it and the connection stays usable.
            await send_response(send, status, headers, body)

        self.busy = busy

    def evict_one(self) -> bool:
        """Close the connection idle longest; False when no connection is idle.

        A connection joins `idle` when its request has been read, so the oldest entries may
        still be awaiting their answer: those move to the back (each at most once per call).
        """
        for _ in range(len(self.idle)):
            victim = next(iter(self.idle))
            del self.idle[victim]
            cycle = victim.cycle
            if cycle is not None and not cycle.response_complete:
                self.idle[victim] = None
            elif not victim.transport.is_closing():
                victim.transport.close()
                return True
        return False


def guarded_protocol(limits: ListenerLimits) -> type[GuardedProtocol]:
    """Return a protocol class for uvicorn's `http` option that enforces `limits`.

    One class per listener: its connections share the listener's idle set and answers.
    """

    class ListenerProtocol(GuardedProtocol):
        listener = _Listener(limits)

    return ListenerProtocol


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with deadlines, a head budget and bounded requests.

    State per connection: `_head_budget` is the number of head bytes still allowed while a head
    is awaited or arriving, None while a body is (so it also tells the phase); `_timer` is the
    one deadline armed, head or body, if any. The hot path (data_received and the callbacks
    per request) inlines what it can: every call there is paid by every request. Made by
    `guarded_protocol()`, which gives each listener's subclass its `listener`.
    """

    # Slots, not instance-dict entries: uvicorn's own attributes already fill most of the 30
    # keys CPython shares between instances' dicts; past that limit every attribute access in
    # uvicorn's per-request code takes the slow path (measured: ~2,600 instructions a request).
    # Class attributes read through an instance are not specialised before Python 3.12: the
    # hot path reads the listener from a slot instead.
    __slots__ = (
        "_app",
        "_body_bytes",
        "_body_seen",
        "_body_since",
        "_head_budget",
        "_listener",
        "_silent_bytes",
        "_timer",
    )

    listener: ClassVar[_Listener]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._listener = self.listener
        self._app = self.app
        self._head_budget: int | None = self._listener.max_head_bytes
        self._timer: asyncio.TimerHandle | None = None
        self._body_since = 0.0
        self._body_bytes = 0
        # Chunked bodies only: bytes of reads that brought no body data since the last one that
        # did (None otherwise), and whether the parser delivered body data in this read.
        self._silent_bytes: int | None = None
        self._body_seen = False

    # Connection events

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        listener = self._listener
        if len(self.connections) > listener.limits.max_connections and not listener.evict_one():
            logger.warning(
                "connection from %s closed: %d connections, every one with a request in flight",
                self.client,
                len(self.connections) - 1,
            )
            transport.close()
            return
        listener.idle[self] = None
        self._timer = self.loop.call_later(listener.limits.head_timeout_s, self._head_overdue)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._listener.idle.pop(self, None)

    def data_received(self, data: bytes | memoryview) -> None:
        self._unset_keepalive_if_required()
        budget = self._head_budget
        if budget is None:
            self._body_bytes += len(data)
        elif len(data) <= budget:
            self._head_budget = budget - len(data)
        else:
            self._feed_past_budget(memoryview(data), budget)
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._upgrade()
        except httptools.HttpParserError:
            # After a refusal raised from a callback, the connection is closing: no second answer.
            self._refuse(self._listener.bad_request)
            return
        if budget is None and self._silent_bytes is not None:
            self._bound_trailers(len(data))
        if self._timer is None:
            # A head or body this read did not complete gets its deadline now.
            budget = self._head_budget
            if budget is None:
                self._arm_body_deadline()
            elif budget < self._listener.max_head_bytes:
                self._arm_head_deadline()

    def _feed_past_budget(self, data: memoryview, budget: int) -> None:
        """Parse only what the head may still take; refuse the head if it does not end there."""
        self.data_received(data[:budget])  # leaves the budget at 0 unless the head ended
        if self.transport.is_closing():
            return
        if self._head_budget == 0:  # the same head is still arriving: it is over the limit
            self._refuse(self._listener.head_too_large)
        else:
            self.data_received(data[budget:])

    def _bound_trailers(self, size: int) -> None:
        """Count a chunked body's read that brought no body data; refuse past the head limit.

        The read that ends the last chunk and starts the trailers goes uncounted, so the parser
        holds at most the limit plus two reads.
        """
        if self._body_seen:
            self._body_seen = False
            self._silent_bytes = 0
            return
        self._silent_bytes = silent = (self._silent_bytes or 0) + size
        if silent > self._listener.max_head_bytes:
            self._refuse(self._listener.trailers_too_large)

    def _upgrade(self) -> None:
        """What uvicorn does when the parser stops at an Upgrade (no WebSocket here: a warning)."""
        if self._should_upgrade():
            self.handle_websocket_upgrade()
        else:
            self._unsupported_upgrade_warning()

    # Parser callbacks

    def on_headers_complete(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        listener = self._listener
        if len(self.headers) > listener.max_headers:
            self._refuse(listener.too_many_headers)
            raise _Refused
        self._head_budget = None
        listener.idle.pop(self, None)
        self.app = listener.busy if len(self.tasks) >= listener.max_requests else self._app
        # The base class by name, not super(): on Python 3.11 super() costs ~800 instructions
        # a call, and these callbacks run for every request.
        HttpToolsProtocol.on_headers_complete(self)

    def on_body(self, body: bytes) -> None:
        # uvicorn's on_body, inlined (a layer would cost ~1,400 instructions per piece of every
        # body), plus the mark the trailer bound reads.
        self._body_seen = True
        cycle = self.cycle
        if (self.parser.should_upgrade() and self._should_upgrade()) or cycle.response_complete:
            return
        cycle.body += body
        if len(cycle.body) > HIGH_WATER_LIMIT:
            self.flow.pause_reading()
        cycle.message_event.set()

    def on_chunk_header(self) -> None:
        # Called for chunked bodies only, so the trailer bound costs the others nothing.
        if self._silent_bytes is None:
            self._silent_bytes = 0
            self._body_seen = False

    def on_message_complete(self) -> None:
        HttpToolsProtocol.on_message_complete(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._silent_bytes = None
        listener = self._listener
        self._head_budget = listener.max_head_bytes
        listener.idle[self] = None
        if self.cycle.response_complete and self.timeout_keep_alive_task is None:
            self._arm_keep_alive()

    # Deadlines

    def _arm_head_deadline(self) -> None:
        if not self.transport.is_closing():
            self._timer = self.loop.call_later(
                self._listener.limits.head_timeout_s, self._head_overdue
            )

    def _arm_body_deadline(self) -> None:
        if not self.transport.is_closing():
            self._body_since = self.loop.time()
            self._body_bytes = 0
            self._timer = self.loop.call_later(
                self._listener.limits.body_timeout_s, self._body_overdue
            )

    def _arm_keep_alive(self) -> None:
        """Arm uvicorn's keep-alive timer for a request answered before its body ended.

        uvicorn arms it when the answer is complete, and every read of the body's remainder
        cancelled it: without this the connection would stay open with no deadline at all.
        """
        if not self.transport.is_closing():
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

    def _head_overdue(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if self._head_budget == self._listener.max_head_bytes:
            self.transport.close()  # not a byte of a head: nothing to answer
        else:
            self._refuse(self._listener.head_timeout)

    def _body_overdue(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        now = self.loop.time()
        limits = self._listener.limits
        if self.flow.read_paused:
            # The server is not reading (the app has not taken what is buffered): the client
            # cannot be late, so its clock starts over.
            self._body_since, self._body_bytes = now, 0
            self._timer = self.loop.call_later(limits.body_timeout_s, self._body_overdue)
            return
        allowed = limits.body_timeout_s + self._body_bytes / limits.body_min_bytes_per_s
        due = self._body_since + allowed
        if now < due:
            self._timer = self.loop.call_at(due, self._body_overdue)
        else:
            self._refuse(self._listener.body_timeout)

    # Refusals

    def _refuse(self, answer: _Answer) -> None:
        """Answer with `answer` where an answer fits, then close the connection.

        During a head the previous request's response must be complete (pipelining); during a
        body this request's response must not have begun. Otherwise the connection just closes.
        """
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if self._head_budget is None:
            fits = not cycle.response_started
            if not cycle.response_complete:
                # The app must not write after the refusal; it reads a disconnect instead.
                cycle.disconnected = True
                cycle.message_event.set()
        else:
            fits = cycle is None or cycle.response_complete
        if fits:
            date = b"".join(
                name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers
            )
            self.transport.write(answer.status_line + date + answer.rest)
        logger.info("refused %s: %s", self.client, answer.detail)
        self.transport.close()
