"""The ERP side: the queues the gateway consumes from the ERP's exchanges, and who gets what.

In the file:

    [erp]
    source = "erp"                       # idempotency scope and envelope partner_id
    publish_events = true                # also an event `{document}.erp` on the events exchange
    requeue_delay_s = 1.0

    [[erp.consumers]]
    queue = "gateway.erp.orders"
    exchange = "erp.events"
    prefetch = 64
    bindings = { "purchase_order.released" = "purchase_order", "item.updated" = "item_master" }

    [[erp.subscriptions]]
    partner = "acme"
    document = "purchase_order"
    match = { "supplier.party_id" = "{partner}" }

`bindings` maps each routing key (or topic pattern) the queue is bound with to the canonical
document type its messages carry. `match` maps a dotted path into the canonical document to the
value it must have; `{partner}` stands for the subscribing partner's id. Subscriptions live here
rather than under `[[partners]]`: they are the routing of ERP messages, checked against the
partner list with the other rules across sections (gateway/config/rules.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated

import msgspec

from canonical import DOCUMENT_TYPES
from gateway.config.base import Base, Name, Problem, Seconds, known
from gateway.config.partners import PARTNER_ID_PATTERN
from gateway.config.tables import did_you_mean
from protocols.amqp.topology import DEFAULT_PARKING_LOT

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_DELIVERY_LIMIT",
    "DEFAULT_PREFETCH",
    "ErpConsumer",
    "ErpSettings",
    "Subscription",
]

# Unacknowledged deliveries the broker pushes to one queue's consumer: the backpressure bound.
DEFAULT_PREFETCH = 64
# Deliveries handled at once per queue, each waiting for its group commit.
DEFAULT_CONCURRENCY = 16
# Deliveries of one message before the quorum queue dead-letters it (3.10 has no default).
DEFAULT_DELIVERY_LIMIT = 20
# Topic routing key words: letters, digits, `_`, `-`, or the wildcards `*` and `#`.
_ROUTING_KEY = r"^([A-Za-z0-9_-]+|\*|#)(\.([A-Za-z0-9_-]+|\*|#))*$"
#: In a subscription's match value, the subscribing partner's id ("orders go to their
#: supplier" reads the same for every supplier).
PARTNER_PLACEHOLDER = "{partner}"
_PLACEHOLDER = re.compile(r"\{[^}]*\}")

PartnerRef = Annotated[str, msgspec.Meta(pattern=PARTNER_ID_PATTERN)]
RoutingKey = Annotated[str, msgspec.Meta(pattern=_ROUTING_KEY, max_length=255)]


def _document_problem(document: str) -> str | None:
    if document in DOCUMENT_TYPES:
        return None
    return f"unknown document type {document!r}{did_you_mean(document, DOCUMENT_TYPES)}"


class ErpConsumer(Base, frozen=True, kw_only=True):
    """One quorum queue the gateway consumes, bound to an ERP exchange."""

    queue: Name
    exchange: Name = "erp.events"
    # Routing key (or pattern) -> canonical document type of the messages it brings.
    bindings: dict[RoutingKey, str]
    prefetch: Annotated[int, msgspec.Meta(ge=1, le=65535)] = DEFAULT_PREFETCH
    concurrency: Annotated[int, msgspec.Meta(ge=1, le=1024)] = DEFAULT_CONCURRENCY
    delivery_limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = DEFAULT_DELIVERY_LIMIT

    def problems(self) -> Iterator[Problem]:
        with known():
            if self.queue == DEFAULT_PARKING_LOT:
                # Declared with other arguments by the gateway: the broker would refuse one.
                yield "queue", "the gateway's parking lot; name another queue"
        with known():
            if not self.bindings:
                yield "bindings", "expected at least one routing key"
            for key, document in self.bindings.items():
                problem = _document_problem(document)
                if problem:
                    yield "bindings", f"{key!r}: {problem}"
        with known():
            if self.concurrency > self.prefetch:
                # Lanes beyond the prefetch would never get a delivery.
                yield "concurrency", f"above prefetch ({self.prefetch})"


class Subscription(Base, frozen=True, kw_only=True):
    """A partner's standing order for one document type, narrowed by field matches."""

    partner: PartnerRef
    document: str
    # Dotted path into the document -> the value it must equal ("{partner}": the partner id).
    match: dict[str, str] = {}

    def problems(self) -> Iterator[Problem]:
        with known():
            unknown_document = _document_problem(self.document)
            if unknown_document:
                yield "document", unknown_document
            else:  # paths lead somewhere in a known document type only
                for path in self.match:
                    problem = _path_problem(self.document, path)
                    if problem:
                        yield "match", f"{path!r}: {problem}"
        with known():
            for path, value in self.match.items():
                unknown = [p for p in _PLACEHOLDER.findall(value) if p != PARTNER_PLACEHOLDER]
                if unknown:
                    yield "match", f"{path!r}: unknown placeholder {unknown[0]}"

    def resolved_match(self) -> dict[str, str]:
        """`match` with the subscribing partner's id in place of `{partner}`."""
        return {
            path: value.replace(PARTNER_PLACEHOLDER, self.partner)
            for path, value in self.match.items()
        }


class ErpSettings(Base, frozen=True, kw_only=True):
    """What the gateway consumes from the ERP and how it routes it to partners."""

    # The idempotency scope of ERP messages (inbox key: source + AMQP message_id) and the
    # envelope's partner_id, hence the outbox routing key `{document}.{source}`.
    source: PartnerRef = "erp"
    # Whether each accepted ERP message is also published on the events exchange as
    # `{document}.{source}` for internal consumers. With nobody bound to those keys the relay
    # dead-letters each one as unroutable (NO_ROUTE): turn it off where nobody listens.
    publish_events: bool = True
    # A delivery the store could not commit waits this long before it is requeued.
    requeue_delay_s: Seconds = 1.0
    consumers: tuple[ErpConsumer, ...] = ()
    subscriptions: tuple[Subscription, ...] = ()

    def problems(self) -> Iterator[Problem]:
        with known():
            first: dict[str, int] = {}  # queue -> index of its first consumer
            for i, consumer in enumerate(self.consumers):
                with known():
                    j = first.setdefault(consumer.queue, i)
                    if j != i:
                        yield f"consumers[{i}].queue", f"same queue as consumers[{j}]"


def _path_problem(document: str, path: str) -> str | None:
    """Say why `path` does not lead to a scalar field of `document`, or None if it does."""
    info: msgspec.inspect.Type = msgspec.inspect.type_info(DOCUMENT_TYPES[document])
    for part in path.split("."):
        struct = _struct_of(info)
        if struct is None:
            return f"{part!r} is below a field that is not a table"
        fields = {f.encode_name: f.type for f in struct.fields}
        if part not in fields:
            return f"no field {part!r}{did_you_mean(part, fields)}"
        info = fields[part]
    if _struct_of(info) is not None or isinstance(
        _unwrap_optional(info), msgspec.inspect.CollectionType | msgspec.inspect.DictType
    ):
        return "leads to a table or a list, not a value"
    return None


def _unwrap_optional(info: msgspec.inspect.Type) -> msgspec.inspect.Type:
    if isinstance(info, msgspec.inspect.UnionType):
        rest = [t for t in info.types if not isinstance(t, msgspec.inspect.NoneType)]
        if len(rest) == 1:
            return rest[0]
    if isinstance(info, msgspec.inspect.Metadata):
        return _unwrap_optional(info.type)
    return info


def _struct_of(info: msgspec.inspect.Type) -> msgspec.inspect.StructType | None:
    info = _unwrap_optional(info)
    return info if isinstance(info, msgspec.inspect.StructType) else None
