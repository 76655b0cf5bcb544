"""Say loudly when accepted messages are routed nowhere: no queue bound to the events exchange.

The relay publishes every accepted message to the events exchange with the mandatory flag; a
routing key no queue is bound for comes back 312 NO_ROUTE and the message becomes a relay dead
letter, while partners keep getting 202. AMQP 0-9-1 cannot list an exchange's bindings (only the
management plugin can), and a probe publish would reach the consumers that are bound, so the
first return is the earliest sign. The relay (in the store's writer process) names the routing
keys whose latest publish came back (`RelayStatistics.unroutable`); this watch, in the gateway's
own process, turns them into one ERROR line per key as it appears, an INFO line once it routes
again, a WARNING at start when the store already holds relay dead letters, and the gauge
`gateway_relay_unroutable_routing_keys`. Readiness is left alone on purpose: a 503 would take
the gateway out of rotation for every partner, and with no traffic no publish could ever show
the key routable again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

__all__ = ["UnroutableWatch"]

log = logging.getLogger("gateway.unroutable")


class UnroutableWatch:
    """Logs routing keys of the events exchange as they become unroutable and routable again."""

    def __init__(self, events_exchange: str) -> None:
        self.exchange = events_exchange
        self._known: frozenset[str] = frozenset()
        self.count = 0

    def starting_with(self, relay_dead_letters: int) -> None:
        """Warn at start about relay dead letters already in the store."""
        if relay_dead_letters:
            log.warning(
                "%d relay dead letter%s in the store: messages no queue bound to exchange %r "
                "took; bind a queue for their routing keys, then replay them with "
                "`gateway dead-letters replay --source relay`",
                relay_dead_letters,
                "" if relay_dead_letters == 1 else "s",
                self.exchange,
            )

    def saw(self, unroutable: Sequence[str]) -> None:
        """Take the relay's latest list of unroutable routing keys; log what changed."""
        now = frozenset(unroutable)
        for key in sorted(now - self._known):
            log.error(
                "no queue is bound to exchange %r for routing key %r: every such message "
                "becomes a dead letter (partners still get 202). Bind a queue (README: Quick "
                "start), then `gateway dead-letters replay --source relay`",
                self.exchange,
                key,
            )
        for key in sorted(self._known - now):
            log.info("routing key %r of exchange %r is routed again", key, self.exchange)
        self._known = now
        self.count = len(now)
