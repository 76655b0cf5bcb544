"""A partner's AMQP outbound channel: its deliveries published to its exchange, with confirms.

The relay's guarantees, per partner: every publish is persistent and `mandatory` and waits for
the broker's confirm (`protocols.amqp.publisher`). What each answer becomes for the courier
(an `actors.ports.DeliveryOutcome`; no HTTP status is made up for it):

- confirmed: `Delivered`;
- returned (no queue bound for the routing key, 312 NO_ROUTE): `Refused`, a dead letter at
  once with the reply code (the outcome's `status`) and text. Retrying cannot bind a queue;
  an operator replays the dead letter once the partner has bound one. The relay does the same;
- nacked (the broker refused responsibility) or no answer (connection lost, confirm timed
  out, exchange refused): `RetryAfter`, retried on the partner's schedule.

The AMQP `message_id` is the canonical message id on every attempt and every replay, so the
partner's consumer dedups a publish that was confirmed but whose confirm was lost.

One connection per partner, opened on the first publish and held open; once lost, it is
reopened no sooner than `canonical.backoff.backoff_delay` allows (attempts in between fail
fast and go again on the schedule). The publisher takes one batch at a time, so one partner's
publishes go one after another: a confirm round trip is short next to a webhook's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import aiormq
import anyio
import msgspec
from aiormq.abc import AbstractChannel

from actors.delivery import Delivered, DeliveryOutcome, Refused, RetryAfter
from canonical import DOCUMENT_TYPES
from canonical.backoff import backoff_delay
from canonical.delivery import DeliveryRecord
from gateway.config.delivery import AmqpOutbound
from protocols.amqp.publisher import BrokerConnectionLost, ConfirmedPublisher, connect

__all__ = ["ExchangeChannel"]

log = logging.getLogger(__name__)


class PartnerMessage(msgspec.Struct, frozen=True, kw_only=True):
    """One delivery as the publisher reads it (`protocols.amqp.publisher.Publishable`)."""

    message_id: str
    correlation_id: str
    causation_id: str | None
    partner_id: str
    document_type: str
    schema_version: int
    idempotency_key: str
    routing_key: str
    body: bytes
    created_at: float


Connect = Callable[..., Awaitable[ConfirmedPublisher]]


class ExchangeChannel:
    """Publishes one partner's deliveries to its exchange over a connection it keeps open."""

    def __init__(
        self,
        partner_id: str,
        outbound: AmqpOutbound,
        url: str,
        *,
        reconnect_min_s: float,
        reconnect_max_s: float,
        clock: Callable[[], float] = time.monotonic,
        connect: Connect = connect,
    ) -> None:
        self._partner_id = partner_id
        self._outbound = outbound
        self._url = url
        self._reconnect_min_s = reconnect_min_s
        self._reconnect_max_s = reconnect_max_s
        self._clock = clock
        self._connect = connect
        parts = urlsplit(url)
        self._address = f"{parts.hostname}:{parts.port or 5672}"  # never the URL: a password
        self._publisher: ConfirmedPublisher | None = None
        self._lock = anyio.Lock()  # the publisher takes one batch at a time
        self._failures = 0  # connection losses since the broker last answered
        self._reconnect_at = 0.0

    async def send(self, delivery: DeliveryRecord, timestamp: int) -> DeliveryOutcome:
        """Publish one delivery and wait for the broker's answer (see the module docstring)."""
        exchange = self._outbound.exchange
        message = self._message(delivery)
        started = self._clock()
        async with self._lock:
            try:
                publisher = await self._open()  # counts its own failures
            except BrokerConnectionLost as exc:
                return RetryAfter(reason=str(exc), latency_s=self._clock() - started)
            try:
                (answer,) = await publisher.publish_batch([message])
            except BrokerConnectionLost as exc:
                await self._lost(exc)
                return RetryAfter(reason=str(exc), latency_s=self._clock() - started)
        self._failures = 0
        match answer.outcome:
            case "confirmed":
                return Delivered(latency_s=answer.latency, detail=b"confirmed")
            case "returned":
                return Refused(
                    reason=f"AMQP {answer.reply_code} {answer.reply_text}: exchange "
                    f"{exchange!r} routes routing key {message.routing_key!r} to no queue",
                    latency_s=answer.latency,
                    detail=answer.reply_text.encode(),
                    status=answer.reply_code,
                )
            case "nacked":
                return RetryAfter(
                    reason=f"exchange {exchange!r}: the broker nacked the publish",
                    latency_s=answer.latency,
                    detail=b"nacked",
                )
            case _:
                return RetryAfter(
                    reason=f"exchange {exchange!r}: publish {answer.outcome}",
                    latency_s=answer.latency,
                    detail=answer.outcome.encode(),
                )

    async def aclose(self) -> None:
        """Close the connection; the next `send` opens a new one."""
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            await publisher.close()

    def _message(self, delivery: DeliveryRecord) -> PartnerMessage:
        document = DOCUMENT_TYPES.get(delivery.document_type)
        return PartnerMessage(
            message_id=delivery.message_id,
            correlation_id=delivery.correlation_id,
            causation_id=None,
            partner_id=delivery.partner_id,
            document_type=delivery.document_type,
            schema_version=document.schema_version if document is not None else 1,
            # The receiving side dedups on this as on message_id: the same on every attempt.
            idempotency_key=delivery.message_id,
            routing_key=self._outbound.routing_key_for(delivery.document_type, self._partner_id),
            body=delivery.body,
            created_at=delivery.created_at,
        )

    async def _open(self) -> ConfirmedPublisher:
        """Return the open publisher, reconnecting if the backoff allows; raise if not."""
        if self._publisher is not None and not self._publisher.is_closed:
            return self._publisher
        await self.aclose()
        wait = self._reconnect_at - self._clock()
        if wait > 0:
            raise BrokerConnectionLost(f"no connection to {self._address}; next try in {wait:.1f}s")
        outbound = self._outbound
        try:
            self._publisher = await self._connect(
                self._url,
                exchange=outbound.exchange,
                window=1,
                connect_timeout=outbound.connect_timeout_s,
                confirm_timeout=outbound.confirm_timeout_s,
                declare=self._declare,
            )
        except BrokerConnectionLost as exc:
            await self._lost(exc)
            raise
        except aiormq.AMQPError as exc:
            # A declare refused: a passive one for a missing exchange (404), or an exchange
            # of another type (406). A deployment fault, retried until it is fixed.
            await self._lost(exc)
            raise BrokerConnectionLost(
                f"exchange {outbound.exchange!r} on {self._address} refused: {exc!r}"
            ) from exc
        return self._publisher

    async def _declare(self, channel: AbstractChannel) -> None:
        await channel.exchange_declare(
            self._outbound.exchange,
            exchange_type="topic",
            durable=True,
            passive=not self._outbound.declare,
        )

    async def _lost(self, cause: BaseException) -> None:
        self._failures += 1
        delay = backoff_delay(
            self._failures, minimum=self._reconnect_min_s, maximum=self._reconnect_max_s
        )
        self._reconnect_at = self._clock() + delay
        # Inside the courier's attempt: the line carries the partner and the message's ids.
        log.warning(
            "partner broker %s unavailable, reconnecting in %.1f s: %s", self._address, delay, cause
        )
        await self.aclose()
