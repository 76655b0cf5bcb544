"""What actors need from the store and from transports: the ports the gateway implements.

Actors import no store and no transport (the layering forbids both); they name here, as
Protocols, the few calls they make, and the gateway wires in what answers them: the store
(`gateway.store.Store` and its facets) and the transports of `protocols/` fit by shape alone.

Store ports:
- `AcceptanceStore`: commit an acceptance (inbox, outbox rows, deliveries) or a dead letter;
  the ERP ingress's (`ErpStore`), and the file intake's.
- `OutboxSource`: the pending outbox rows the relay publishes, and their fate.
- `DeliverySource`: the due deliveries a courier attempts, and their fate.
- The purchase-order threads' `ThreadLedger`, `CommittedInputs` and `DueTimers` (defined
  beside the workflow in `actors.workflow.ports`, re-exported here).

Transport ports: `OutboxPublisher` and its `PublishAnswer` (a confirming AMQP publisher),
`DeliveryChannel` and the `DeliveryOutcome` of an attempt (`Delivered`, `RetryAfter`,
`Refused`, `Disable`: a webhook endpoint, a partner's exchange and X12 files all answer so),
`ErpDelivery` (one message from an ERP queue).

The values that cross to the store (`Acceptance`, `OutboxRecord`, `NewDelivery`,
`DeliveryRecord`...) are defined in `canonical` and re-exported here: the store may import
nothing but `canonical`, and its writer process decodes them by type, so canonical is the one
place both sides can read them from. They are data only; every contract with behaviour (a call
and what it promises) is a Protocol in this module. The delivery outcomes never reach the
store (the courier turns them into settlements), so they are defined here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol, runtime_checkable

from msgspec import Struct

from actors.workflow.ports import (
    CommittedDocument,
    CommittedInputs,
    DueTimer,
    DueTimers,
    EventRecord,
    SettledDelivery,
    StepCommit,
    StepOutcome,
    ThreadLedger,
    ThreadRecord,
)
from canonical.delivery import DeliveryAttempt, DeliveryRecord, Settlement
from canonical.outbox import Acceptance, Accepted, NewDelivery, NewOutboxRow, OutboxRecord

__all__ = [
    "Acceptance",
    "AcceptanceStore",
    "Accepted",
    "CommittedDocument",
    "CommittedInputs",
    "Delivered",
    "DeliveryAttempt",
    "DeliveryChannel",
    "DeliveryOutcome",
    "DeliveryRecord",
    "DeliverySource",
    "Disable",
    "DueTimer",
    "DueTimers",
    "ErpDelivery",
    "EventRecord",
    "NewDelivery",
    "NewOutboxRow",
    "OutboxPublisher",
    "OutboxRecord",
    "OutboxSource",
    "PartialBatch",
    "PublishAnswer",
    "PublishOutcome",
    "Refused",
    "RetryAfter",
    "SettledDelivery",
    "Settlement",
    "StepCommit",
    "StepOutcome",
    "ThreadLedger",
    "ThreadRecord",
]

# --- the store ---------------------------------------------------------------------------


class AcceptanceStore(Protocol):
    """Commit what an intake accepted, or set aside what it never can (`Store` has both)."""

    async def accept(self, acceptance: Acceptance) -> Accepted:
        """Commit the acceptance whole (idempotency record, outbox rows, deliveries) or not at
        all; answer only once it is committed (or answered from the inbox for a replay)."""
        ...

    async def dead_letter(
        self,
        *,
        source: str,
        reason: str,
        detail: str,
        payload: bytes,
        partner_id: str | None = None,
        message_id: str | None = None,
    ) -> int:
        """Keep a message nothing can accept, with the reason; answer the dead letter's id."""
        ...


class OutboxSource(Protocol):
    """Where the relay reads pending rows and records their fate (the store)."""

    async def pending(self, limit: int, after_seq: int = 0) -> list[OutboxRecord]:
        """Up to `limit` rows still pending with seq > `after_seq`, in seq order."""
        ...

    async def mark_published(self, seqs: Sequence[int]) -> None:
        """Mark these rows published (confirmed by the broker)."""
        ...

    async def mark_dead(self, seq: int, reason: str) -> None:
        """Take this row out of the outbox into the dead letters, with the reason."""
        ...


class DeliverySource(Protocol):
    """Where the courier reads due deliveries and records their fate (the store)."""

    async def heads(self, partner_id: str, limit: int) -> list[DeliveryRecord]:
        """The oldest pending delivery of each of the partner's aggregates, soonest due first."""
        ...

    async def settle(
        self,
        delivery_id: int,
        attempt: DeliveryAttempt,
        settlement: Settlement,
        *,
        next_attempt_at: float = 0.0,
        reason: str | None = None,
    ) -> None:
        """Record an attempt and what became of the delivery (delivered, retry, dead)."""
        ...

    async def endpoint_disabled(self, partner_id: str) -> bool: ...

    async def disable_endpoint(self, partner_id: str, reason: str) -> None: ...


# --- transports --------------------------------------------------------------------------

PublishOutcome = Literal["confirmed", "nacked", "returned", "lost", "unpublishable"]


class PublishAnswer(Protocol):
    """The broker's answer to one publish (`protocols.amqp.Delivery` is one)."""

    @property
    def message_id(self) -> str: ...
    @property
    def outcome(self) -> PublishOutcome: ...
    @property
    def reply_code(self) -> int: ...
    @property
    def reply_text(self) -> str: ...
    @property
    def latency(self) -> float: ...


class OutboxPublisher(Protocol):
    """A connected, confirming publisher (`protocols.amqp.ConfirmedPublisher` is one).

    `publish_batch` returns one answer per row, in order. When the connection dies it raises a
    `ConnectionError`; if that error has a `deliveries` attribute (see `PartialBatch`), the
    answers in it are settled before reconnecting.
    """

    async def publish_batch(self, messages: Sequence[OutboxRecord]) -> Sequence[PublishAnswer]: ...

    async def close(self) -> None: ...


@runtime_checkable
class PartialBatch(Protocol):
    """A connection error carrying the answers received before the connection died."""

    @property
    def deliveries(self) -> Sequence[PublishAnswer]: ...


class Delivered(Struct, frozen=True, kw_only=True):
    """The other side took the message: a 2xx, a broker's confirm, a file queued to send."""

    latency_s: float
    # For the attempt log: the first bytes of what the other side answered (an HTTP body's
    # head), or what the channel did ("confirmed", "queued 850_000000001.x12").
    detail: bytes = b""
    # The transport's own code when it has one (an HTTP status); None for AMQP and files.
    status: int | None = None


class RetryAfter(Struct, frozen=True, kw_only=True):
    """Not taken this time: try again on the retry schedule (no answer, a 5xx, a nack).

    `delay_s` is how long the other side asked every call to wait (HTTP Retry-After): the
    courier pauses the whole endpoint that long (capped by its rules), and the next attempt
    of this message waits at least that. `healthy` says the other side is up and only asks
    to slow down (HTTP 429): the attempt does not count against the circuit breaker.
    """

    reason: str
    latency_s: float
    delay_s: float | None = None
    healthy: bool = False
    detail: bytes = b""
    status: int | None = None


class Refused(Struct, frozen=True, kw_only=True):
    """Never deliverable as it is (a target the egress guard refuses, an AMQP return: no
    queue bound, a document X12 cannot carry): a dead letter at once, with the reason, for an
    operator to replay once the partner or the configuration is fixed."""

    reason: str
    latency_s: float
    detail: bytes = b""
    status: int | None = None  # the transport's code for the refusal, e.g. AMQP 312 NO_ROUTE


class Disable(Struct, frozen=True, kw_only=True):
    """The endpoint is gone for good (HTTP 410): disable it, keep its messages pending until
    an operator enables it again, rather than burn their retries on it."""

    reason: str
    latency_s: float
    detail: bytes = b""
    status: int | None = None


DeliveryOutcome = Delivered | RetryAfter | Refused | Disable
"""What one attempt to hand a message over came to, in the courier's terms, for every channel."""


class DeliveryChannel(Protocol):
    """How one partner's messages leave the gateway: a webhook endpoint, an AMQP exchange, X12
    files; each says what an attempt came to as a `DeliveryOutcome`, never in another
    transport's terms (an AMQP confirm is `Delivered`, not a fake HTTP 200)."""

    async def send(self, delivery: DeliveryRecord, timestamp: int) -> DeliveryOutcome:
        """Hand one message over (unix `timestamp` of the attempt); return the outcome.

        A channel maps its transport's answers and failures (unreachable, timeout, a lost
        broker connection: `RetryAfter`) to outcomes itself. A `GatewayError` that still
        escapes is taken by the courier as `RetryAfter` with the error as the reason.
        """
        ...

    async def aclose(self) -> None:
        """Release what the channel holds open (a broker connection); it may be used again."""
        ...


class ErpDelivery(Protocol):
    """What the ERP ingress reads of a message (`protocols.amqp.consumer.Inbound` has it all)."""

    @property
    def queue(self) -> str: ...
    @property
    def routing_key(self) -> str: ...
    @property
    def body(self) -> bytes: ...
    @property
    def message_id(self) -> str | None: ...
    @property
    def correlation_id(self) -> str | None: ...
    @property
    def message_type(self) -> str | None: ...
    @property
    def received_at(self) -> float: ...
    @property
    def traceparent(self) -> str | None:
        """The W3C `traceparent` the ERP sent, already validated; None if none or invalid."""
        ...
