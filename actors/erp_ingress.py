"""The ERP ingress: one ERP message in, one committed acceptance (or one dead letter) out.

The idempotent consumer of DESIGN step 8. For each delivery from an ERP queue it

1. finds the document type: the queue's binding for the routing key (exact key first, then
   topic patterns in configuration order), else the AMQP `type` property;
2. decodes and validates the body as that canonical document;
3. wraps it in a new envelope (partner_id = the ERP source, e.g. "erp"; causation = the AMQP
   message id; correlation = the AMQP correlation id, or the new message id);
4. builds an `Acceptance` keyed by (source, AMQP message id): one outbox row, so internal
   consumers (workflow actors, other systems) see the ERP event on the events exchange as
   `{document}.{source}` (unless `publish_events` is off), plus one `NewDelivery` per partner
   whose subscription matches (`actors.routing`), carrying the same envelope bytes;
5. commits it through the store, and only then answers "ack".

The answer is the transport's instruction. A message that can never be accepted (not JSON, an
invalid document, no document type, its message id reused with another body) becomes a dead
letter (source `amqp:<queue>`, the reason naming every bad field) and is acked: the broker never
redelivers it forever. So does a message the decoding crashed on (a bug; the reason names the
exception, the detail has the trace): it would crash on every redelivery. A store that cannot
commit (or the same message still in flight in another lane) answers "requeue": the consumer
nacks it after a short delay and the quorum queue's delivery limit is the backstop. A
redelivery of a committed message is answered from the inbox (same key, same body) and acked,
without a second outbox row or delivery.

Not a runtime `Actor`: the work is stateless per message and the consumer's lanes (at most
the prefetch) already bound it; a mailbox in between would add a hop and lose the delivery
order the lanes keep.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import traceback
from collections.abc import Mapping
from typing import Literal

import msgspec
import orjson

from actors.partner import body_hash
from actors.ports import (
    Acceptance,
    AcceptanceStore,
    ErpDelivery,
    NewDelivery,
    NewOutboxRow,
)
from actors.routing import Router, aggregate_key
from canonical import decode_document, encode_envelope, new_envelope, routing_key
from canonical.envelope import MAX_ID_LENGTH
from canonical.errors import (
    FieldError,
    GatewayError,
    IdempotencyConflict,
    InvalidDocument,
    StoreUnavailable,
)

__all__ = [
    "ACCEPTED",
    "ErpDeadLetterDetail",
    "ErpDelivery",
    "ErpIngress",
    "ErpStatistics",
    "ErpStore",
    "QueueBindings",
    "derived_key",
    "refusal_reason",
]

log = logging.getLogger(__name__)

ACCEPTED = 202

Answer = Literal["ack", "requeue"]

ErpStore = AcceptanceStore  # the two store calls the ingress makes


class ErpDeadLetterDetail(msgspec.Struct, frozen=True, kw_only=True):
    """An ERP dead letter's `detail` (JSON): why, and the delivery's properties besides its body.

    Enough to take the message through the ingress again (gateway/resubmit.py, on replay),
    once the configuration (a binding) or the gateway (a fixed rule) has changed.
    """

    error: str
    queue: str
    routing_key: str
    message_type: str | None
    correlation_id: str | None
    received_at: float
    # The W3C trace the ERP sent, so a replay continues it; absent in older dead letters.
    traceparent: str | None = None


class ErpStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """What the ingress did since it was created."""

    accepted: int  # committed for the first time
    replayed: int  # redeliveries answered from the inbox
    dead_lettered: int
    requeued: int


class QueueBindings:
    """One queue's routing keys (or topic patterns) and the document type each brings."""

    def __init__(self, bindings: Mapping[str, str]) -> None:
        self._exact = {k: v for k, v in bindings.items() if not _is_pattern(k)}
        self._patterns = [(_topic_regex(k), v) for k, v in bindings.items() if _is_pattern(k)]

    def document_type(self, key: str) -> str | None:
        """Return the document type for a delivery's routing key, or None if none is bound."""
        found = self._exact.get(key)
        if found is not None:
            return found
        for pattern, document_type in self._patterns:
            if pattern.fullmatch("." + key):
                return document_type
        return None


def derived_key(document_type: str, body: bytes) -> str:
    """The idempotency key of a message the ERP sent without a message_id.

    A digest of the document type and the body: a redelivery or a republish of the same bytes
    is recognised, but so is a second, deliberate send of an identical document, which is
    then kept once. Publishers that can resend a document unchanged must set message_id.
    """
    return "sha256:" + hashlib.sha256(document_type.encode() + b"\0" + body).hexdigest()


class ErpIngress:
    """Turns ERP deliveries into committed acceptances or dead letters; answers ack or requeue."""

    def __init__(
        self,
        store: ErpStore,
        router: Router,
        *,
        source: str,
        queues: Mapping[str, QueueBindings],
        publish_events: bool = True,
    ) -> None:
        self._store = store
        self._router = router
        self._source = source
        self._queues = dict(queues)
        self._publish_events = publish_events
        self._accepted = self._replayed = self._dead_lettered = self._requeued = 0

    def route_with(self, router: Router) -> None:
        """Route the next messages with `router` (a reloaded configuration's subscriptions)."""
        self._router = router

    def statistics(self) -> ErpStatistics:
        return ErpStatistics(
            accepted=self._accepted,
            replayed=self._replayed,
            dead_lettered=self._dead_lettered,
            requeued=self._requeued,
        )

    async def handle(self, delivery: ErpDelivery) -> Answer:
        """Commit the delivery (or its dead letter), then tell the consumer to ack; or requeue."""
        try:
            acceptance = self.acceptance(delivery)
        except GatewayError as exc:  # InvalidDocument: nothing in it can be accepted
            return await self._dead_letter(delivery, exc)
        except Exception as crash:
            # A bug, but decoding and routing depend on the message alone: a requeue would
            # crash again until the broker's delivery limit parked it without a reason. Keep it
            # as a dead letter with the trace instead, to replay once the bug is fixed.
            log.exception("ERP message %s crashed the ingress", delivery.message_id)
            return await self._dead_letter(delivery, crash)
        try:
            accepted = await self._store.accept(acceptance)
        except (StoreUnavailable, IdempotencyConflict) as exc:
            # A conflict is the same message still in flight in another lane (a duplicate
            # publish): normal, answered from the inbox when it comes back. It comes back once
            # per lane holding a copy, so a line each only when debugging.
            log.log(
                logging.DEBUG if isinstance(exc, IdempotencyConflict) else logging.WARNING,
                "ERP message not kept yet, requeueing: %s",
                exc,
                extra={"partner": self._source},
            )
            self._requeued += 1
            return "requeue"
        except GatewayError as exc:
            # IdempotencyKeyReused, or rows the store refused: never acceptable.
            return await self._dead_letter(delivery, exc)
        if accepted.replayed:
            self._replayed += 1
        else:
            self._accepted += 1
        return "ack"

    def acceptance(self, delivery: ErpDelivery) -> Acceptance:
        """Decode, envelope and route one delivery; raises `InvalidDocument` naming what is bad."""
        document_type = self.document_type(delivery)
        _check_ids(delivery)
        document = decode_document(document_type, delivery.body)
        key = delivery.message_id or derived_key(document_type, delivery.body)
        envelope = new_envelope(
            document,
            partner_id=self._source,
            idempotency_key=key,
            correlation_id=delivery.correlation_id,
            causation_id=delivery.message_id,
            received_at=dt.datetime.fromtimestamp(delivery.received_at, dt.UTC),
            traceparent=delivery.traceparent,
        )
        body = encode_envelope(envelope)
        partners = self._router.partners_for(document)
        thread = aggregate_key(document)
        deliveries = tuple(
            NewDelivery(
                partner_id=partner_id,
                message_id=envelope.message_id,
                document_type=envelope.document_type,
                aggregate_key=thread,
                correlation_id=envelope.correlation_id,
                body=body,
            )
            for partner_id in partners
        )
        row = NewOutboxRow(
            message_id=envelope.message_id,
            document_type=envelope.document_type,
            schema_version=envelope.schema_version,
            routing_key=routing_key(envelope.document_type, self._source),
            correlation_id=envelope.correlation_id,
            causation_id=envelope.causation_id,
            body=body,
        )
        response = orjson.dumps(
            {
                "status": "accepted",
                "message_ids": [envelope.message_id],
                "correlation_id": envelope.correlation_id,
                "partners": list(partners),
            }
        )
        return Acceptance(
            partner_id=self._source,
            idempotency_key=key,
            body_hash=body_hash(document_type, delivery.body),
            response_status=ACCEPTED,
            response_body=response,
            records=(row,) if self._publish_events else (),
            deliveries=deliveries,
        )

    def document_type(self, delivery: ErpDelivery) -> str:
        """Return the delivery's document type: its binding's, else the AMQP `type` property."""
        bindings = self._queues.get(delivery.queue)
        found = bindings.document_type(delivery.routing_key) if bindings else None
        found = found or delivery.message_type
        if not found:
            raise InvalidDocument(
                f"no document type for routing key {delivery.routing_key!r}",
                errors=[
                    FieldError(
                        "$.document_type",
                        f"routing key {delivery.routing_key!r} has no binding and the "
                        "message has no AMQP type property",
                    )
                ],
            )
        return found

    async def _dead_letter(self, delivery: ErpDelivery, error: Exception) -> Answer:
        if isinstance(error, GatewayError):
            reason, text = refusal_reason(error), error.detail
        else:  # a crash of the decoding: requeueing would only crash again
            reason = f"crash: {type(error).__name__}: {error}"
            text = "".join(traceback.format_exception(error))
        detail = ErpDeadLetterDetail(
            error=text,
            queue=delivery.queue,
            routing_key=delivery.routing_key,
            message_type=delivery.message_type,
            correlation_id=delivery.correlation_id,
            received_at=delivery.received_at,
            traceparent=delivery.traceparent,
        )
        try:
            await self._store.dead_letter(
                source=f"amqp:{delivery.queue}",
                reason=reason,
                detail=msgspec.json.encode(detail).decode(),
                payload=delivery.body,
                partner_id=self._source,
                message_id=delivery.message_id,
            )
        except StoreUnavailable as exc:
            log.warning(
                "ERP dead letter not kept yet, requeueing: %s", exc, extra={"partner": self._source}
            )
            self._requeued += 1
            return "requeue"
        log.warning("ERP message dead-lettered: %s", reason, extra={"partner": self._source})
        self._dead_lettered += 1
        return "ack"


def refusal_reason(error: GatewayError) -> str:
    """An ERP dead letter's reason: the error's reason and every bad field, else its detail."""
    fields = "; ".join(f"{e.path}: {e.message}" for e in error.errors)
    return f"{error.reason}: {fields or error.detail}"


def _check_ids(delivery: ErpDelivery) -> None:
    errors = [
        FieldError(name, f"longer than {MAX_ID_LENGTH} characters")
        for name in ("message_id", "correlation_id")
        if len(getattr(delivery, name) or "") > MAX_ID_LENGTH
    ]
    if errors:
        raise InvalidDocument("AMQP properties unusable as message ids", errors=errors)


def _is_pattern(key: str) -> bool:
    return "*" in key.split(".") or "#" in key.split(".")


def _topic_regex(pattern: str) -> re.Pattern[str]:
    """Compile a topic binding: `*` is exactly one word, `#` zero or more words.

    Matched against the routing key with a leading dot, so every word is `.word`.
    """
    words = {"*": r"\.[^.]+", "#": r"(?:\.[^.]+)*"}
    return re.compile("".join(words.get(w, r"\." + re.escape(w)) for w in pattern.split(".")))
