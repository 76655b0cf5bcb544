"""The ERP side: one consumer per configured queue, feeding the ERP ingress actor."""

from __future__ import annotations

from actors.erp_ingress import ErpIngress, QueueBindings
from actors.routing import Router, Subscription
from gateway.config import GatewayConfig
from gateway.store import Store
from protocols.amqp.consumer import QueueConsumer, QueueSpec

__all__ = ["build_erp_ingress", "erp_ingress", "erp_router"]


def erp_router(cfg: GatewayConfig) -> Router:
    """Which partners get the ERP's documents: `[[erp.subscriptions]]`."""
    return Router(
        Subscription.of(s.partner, s.document, s.resolved_match()) for s in cfg.erp.subscriptions
    )


def erp_ingress(cfg: GatewayConfig, store: Store) -> ErpIngress:
    """Build the ERP ingress alone: its bindings, subscriptions and store (also for replays)."""
    erp = cfg.erp
    return ErpIngress(
        store,
        erp_router(cfg),
        source=erp.source,
        queues={c.queue: QueueBindings(c.bindings) for c in erp.consumers},
        publish_events=erp.publish_events,
    )


def build_erp_ingress(cfg: GatewayConfig, store: Store) -> tuple[ErpIngress, list[QueueConsumer]]:
    """Build the ERP ingress and one consumer per `[[erp.consumers]]` queue."""
    erp, amqp = cfg.erp, cfg.amqp
    ingress = erp_ingress(cfg, store)
    consumers = [
        QueueConsumer(
            amqp.url.reveal(),
            QueueSpec(
                queue=c.queue,
                exchange=c.exchange,
                routing_keys=tuple(c.bindings),
                prefetch=c.prefetch,
                delivery_limit=c.delivery_limit,
                dead_letter_exchange=amqp.dead_letter_exchange,
            ),
            ingress.handle,
            lanes=c.concurrency,
            requeue_delay=erp.requeue_delay_s,
            reconnect_min=amqp.reconnect_min_s,
            reconnect_max=amqp.reconnect_max_s,
        )
        for c in erp.consumers
    ]
    return ingress, consumers
