"""Build the AsyncAPI 3.0 document for what the gateway sends: the events exchange, partners'
AMQP exchanges and outbound webhooks; msgspec writes the schemas.

Every message is a canonical `Envelope` whose `document` is one document type; a message per
document type names that pairing. The routing key the gateway publishes under is always
`canonical.outbox.routing_key(document, partner)`, `{document}.{partner}`, where partner is a
partner id, an ERP source name or a thread's supplier; a partner's own AMQP exchange gets its
`routing_key` template (`{document}.{partner}` by default, gateway/config/delivery.py).
"""

from __future__ import annotations

from typing import Any

import msgspec

from canonical.common import PartnerId
from canonical.documents import DOCUMENT_TYPES
from canonical.envelope import Envelope
from gateway.config.delivery import DEFAULT_AMQP_ROUTING_KEY
from gateway.config.settings import AmqpSettings
from gateway.contracts.schemas import refine

__all__ = ["ASYNCAPI_VERSION", "EVENTS_ADDRESS", "asyncapi_document"]

ASYNCAPI_VERSION = "3.0.0"
EVENTS_ADDRESS = "{document}.{partner}"
_REF = "#/components/schemas/{name}"
_AMQP_BINDING_VERSION = "0.3.0"

# The AMQP properties and headers the publisher sets (protocols/amqp/publisher.py `_encode`).
_AMQP_HEADERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "partner_id": {"type": "string"},
        "schema_version": {"type": "integer", "minimum": 1},
        "idempotency_key": {"type": "string"},
        "causation_id": {"type": "string"},
        "traceparent": {"type": "string", "description": "W3C Trace Context, when traced"},
    },
    "required": ["partner_id", "schema_version", "idempotency_key"],
}
# The Standard Webhooks headers the egress sets (protocols/http/egress.py `post_webhook`).
_WEBHOOK_HEADERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "webhook-id": {"type": "string", "description": "the message id"},
        "webhook-timestamp": {"type": "string", "description": "unix seconds"},
        "webhook-signature": {
            "type": "string",
            "description": "v1,<base64 HMAC-SHA256 of id.timestamp.body, partner's secret>",
        },
        "content-type": {"const": "application/json"},
        "traceparent": {"type": "string", "description": "W3C Trace Context, a new span id"},
    },
    "required": ["webhook-id", "webhook-timestamp", "webhook-signature"],
}


def asyncapi_document(*, events_exchange: str | None = None) -> dict[str, Any]:
    """Return the AsyncAPI 3.0 document; `events_exchange` defaults to the config's default."""
    defaults = {f.name: f.default for f in msgspec.structs.fields(AmqpSettings)}
    exchange = events_exchange or str(defaults["events_exchange"])
    names = sorted(DOCUMENT_TYPES)
    schemas, components = msgspec.json.schema_components(
        [Envelope, PartnerId, *(DOCUMENT_TYPES[n] for n in names)], ref_template=_REF
    )
    partner_schema = schemas[1]
    components = {name: _asyncapi_schema(refine(s)) for name, s in components.items()}
    messages = {name: _message(name, DOCUMENT_TYPES[name].__name__) for name in names}
    refs = {name: {"$ref": f"#/components/messages/{name}"} for name in names}
    partner = {
        "description": (
            "a partner id, an ERP source name or a thread's supplier: "
            f"{partner_schema.get('pattern', 'see PartnerId')}"
        )
    }
    document_parameter = {"enum": names, "description": "the document type"}
    channels: dict[str, dict[str, Any]] = {
        "events": {
            "address": EVENTS_ADDRESS,
            "title": "The gateway's events exchange",
            "description": (
                "Every message the gateway accepts (webhooks, files, ERP when publish_events) "
                "and every event the workflow threads emit, published by the outbox relay."
            ),
            "parameters": {"document": document_parameter, "partner": partner},
            "messages": refs,
            "bindings": {"amqp": _exchange_binding(exchange)},
        },
        "partnerExchange": {
            "address": DEFAULT_AMQP_ROUTING_KEY,
            "title": "A partner's own AMQP exchange ([partners.outbound_amqp])",
            "description": (
                "Deliveries to partners that take AMQP; the routing key is the partner's "
                "`routing_key` template, this one by default."
            ),
            "parameters": {"document": document_parameter, "partner": partner},
            "messages": refs,
            "bindings": {"amqp": _exchange_binding("{partner exchange}")},
        },
        "outboundWebhooks": {
            "address": None,
            "title": "Outbound webhooks: a signed POST to the partner's URL",
            "description": "The partner's `webhook.url`; its 2xx answer settles the delivery.",
            "messages": refs,
        },
    }
    operations: dict[str, dict[str, Any]] = {
        "publishEvents": _operation("events", names, "Publish each accepted message and event"),
        "deliverAmqp": _operation("partnerExchange", names, "Deliver to a partner's exchange"),
        "deliverWebhook": _operation("outboundWebhooks", names, "POST to a partner's webhook"),
    }
    for name in names:
        messages[name]["headers"] = _AMQP_HEADERS
    messages_webhook = {
        f"{name}_webhook": {
            **_message(name, DOCUMENT_TYPES[name].__name__),
            "headers": _WEBHOOK_HEADERS,
        }
        for name in names
    }
    channels["outboundWebhooks"]["messages"] = {
        key: {"$ref": f"#/components/messages/{key}"} for key in messages_webhook
    }
    # A POST whose 2xx settles the delivery (actors/delivery): the HTTP operation binding.
    operations["deliverWebhook"]["bindings"] = {
        "http": {"method": "POST", "bindingVersion": "0.3.0"}
    }
    operations["deliverWebhook"]["messages"] = [
        {"$ref": f"#/channels/outboundWebhooks/messages/{key}"} for key in messages_webhook
    ]
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "partner-gateway events",
            "version": "1",
            "description": "What the gateway publishes, generated from the canonical Structs.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "rabbitmq": {
                "host": "localhost:5672",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": "The broker of `[broker] url`",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": {**messages, **messages_webhook}, "schemas": components},
    }


def _message(document_type: str, struct_name: str) -> dict[str, Any]:
    return {
        "name": document_type,
        "title": f"Envelope carrying a {document_type}",
        "contentType": "application/json",
        "payload": {
            "allOf": [
                {"$ref": "#/components/schemas/Envelope"},
                {
                    "type": "object",
                    "properties": {
                        "document_type": {"const": document_type},
                        "document": {"$ref": f"#/components/schemas/{struct_name}"},
                    },
                },
            ]
        },
        "bindings": {"amqp": {"messageType": document_type, "bindingVersion": "0.3.0"}},
    }


def _operation(channel: str, names: list[str], title: str) -> dict[str, Any]:
    return {
        "action": "send",
        "title": title,
        "channel": {"$ref": f"#/channels/{channel}"},
        "messages": [{"$ref": f"#/channels/{channel}/messages/{name}"} for name in names],
    }


def _exchange_binding(name: str) -> dict[str, Any]:
    return {
        "is": "routingKey",
        "exchange": {"name": name, "type": "topic", "durable": True, "autoDelete": False},
        "bindingVersion": _AMQP_BINDING_VERSION,
    }


def _asyncapi_schema(schema: Any) -> Any:
    """msgspec's schema as an AsyncAPI Schema Object: its `discriminator` is a property name."""
    if isinstance(schema, dict):
        out = {key: _asyncapi_schema(value) for key, value in schema.items()}
        found = out.get("discriminator")
        if isinstance(found, dict):
            out["discriminator"] = found["propertyName"]
        return out
    if isinstance(schema, list):
        return [_asyncapi_schema(item) for item in schema]
    return schema
