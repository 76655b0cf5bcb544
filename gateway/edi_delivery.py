"""Delivery by X12 file: a partner's purchase orders (and changes) written as X12 files.

`X12FileDelivery` is a `actors.delivery.DeliveryChannel` like the webhook and AMQP ones, so the
same courier, retry schedule and delivery ledger serve it. Its `send` writes the message as one
interchange into the store's files to send (`store.edi.queue_interchange`: control numbers
from the partner's persisted sequences, the set recorded for the partner's 997, in one
transaction); the partner's file channel poller puts it in the outbound folder (SFTP or the
drop box) on its next round, and keeps it pending until the put is recorded. The outcome is
`Delivered` once the file is durably queued (its detail names the file; there is no status
code: files have none); an X12 that cannot carry the document (a value with a delimiter, a
type with no set) is `Refused`: a dead letter at once; a store that cannot commit is
`RetryAfter`.

A file carries no headers, so the message's W3C trace cannot travel with it: the queued file
is logged with the message's `traceparent` (and, with tracing on, the courier's `delivery
attempt` span, a child of that trace, covers queueing it), so the file is found from the trace
and the trace from the file.

`RoutedChannel` lets one partner take some documents as X12 files and the rest by its webhook
or AMQP channel (`[partners.edi] send_as_x12`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from actors.delivery import Delivered, DeliveryChannel, DeliveryOutcome, Refused, RetryAfter
from canonical import decode_envelope
from canonical.delivery import DeliveryRecord
from canonical.errors import InvalidDocument, StoreUnavailable
from canonical.tracecontext import traceparent_of
from canonical.x12 import X12Error, X12Profile
from gateway.config.partners import PartnerConfig
from gateway.store import Store

__all__ = ["FILES_CHANNEL", "RoutedChannel", "X12FileDelivery", "x12_delivery_for"]

log = logging.getLogger(__name__)

# The channel name the file channel poller puts files for (gateway/file_channels.py).
FILES_CHANNEL = "files"


class X12FileDelivery:
    """Writes one partner's deliveries as X12 interchanges to send (module docstring)."""

    def __init__(
        self,
        store: Store,
        partner_id: str,
        profile: X12Profile,
        *,
        channel: str = FILES_CHANNEL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._partner_id = partner_id
        self._profile = profile
        self._channel = channel
        self._clock = clock

    async def send(self, delivery: DeliveryRecord, timestamp: int) -> DeliveryOutcome:
        """Queue the delivery's document as one interchange (see the module docstring)."""
        started = self._clock()
        try:
            document = decode_envelope(delivery.body).document
        except InvalidDocument as exc:
            return Refused(
                reason=f"not a canonical envelope: {exc}", latency_s=self._clock() - started
            )
        try:
            name, _ = await self._store.edi.queue_interchange(
                self._partner_id,
                self._channel,
                [(delivery.message_id, delivery.correlation_id, document)],
                self._profile,
            )
        except X12Error as exc:
            return Refused(reason=f"x12: {exc}", latency_s=self._clock() - started)
        except StoreUnavailable as exc:
            return RetryAfter(reason=str(exc), latency_s=self._clock() - started)
        log.info(
            "x12 file queued",
            extra={"fields": {"file": name, "traceparent": traceparent_of(delivery.body)}},
        )
        return Delivered(latency_s=self._clock() - started, detail=f"queued {name}".encode())

    async def aclose(self) -> None:
        """Nothing held open: the poller owns the transport."""


class RoutedChannel:
    """Documents of `types` by `files`, the rest by `other` (refused when there is none)."""

    def __init__(
        self, files: DeliveryChannel, types: frozenset[str], other: DeliveryChannel | None
    ) -> None:
        self._files = files
        self._types = types
        self._other = other

    async def send(self, delivery: DeliveryRecord, timestamp: int) -> DeliveryOutcome:
        if delivery.document_type in self._types:
            return await self._files.send(delivery, timestamp)
        if self._other is None:
            return Refused(
                reason=f"{delivery.document_type} has no channel: not in send_as_x12, and "
                "no webhook or AMQP outbound",
                latency_s=0.0,
            )
        return await self._other.send(delivery, timestamp)

    async def aclose(self) -> None:
        await self._files.aclose()
        if self._other is not None:
            await self._other.aclose()


def x12_delivery_for(
    partner: PartnerConfig, store: Store, other: DeliveryChannel | None
) -> DeliveryChannel | None:
    """The partner's delivery channel with its `send_as_x12` documents going out as files."""
    if not partner.edi.send_as_x12:
        return other
    files = X12FileDelivery(store, partner.id, partner.x12 or X12Profile())
    return RoutedChannel(files, partner.edi.send_as_x12, other)
