"""One partner's delivery actor: attempts its due messages, settles each in the store.

Each partner has its own courier, task and task group, so a partner that fails, hangs or is
rate limited only ever delays itself. Within a partner, order is kept per aggregate: the store
hands out only the oldest pending delivery of each aggregate (`heads`), and the next one of
that aggregate becomes a head only once the earlier one is delivered or dead. Different
aggregates go at once, up to the partner's concurrency.

What an attempt's outcome means (`actors.ports.DeliveryOutcome`; each channel maps its own
transport's answers to these, the webhook channel by Standard Webhooks' sender guidance):
- `Delivered`: settled delivered; the circuit breaker counts a success.
- `RetryAfter`: a failure, retried on the schedule, then dead-lettered (retries spent, or the
  message older than `max_age_s`). With `delay_s` the endpoint is not called again before
  that time has passed (capped by `max_retry_after_s`); a `healthy` one (slow down, not
  down) does not count against the breaker.
- `Refused`: the message can never be taken as it is: a dead letter at once, with the
  reason, for an operator to replay once the partner or the configuration is fixed.
- `Disable`: the endpoint is gone; it is disabled (a store flag) and its messages stay
  pending until an operator enables it again.

The courier does not know the transport: it decides on outcomes only. What operators see of
an attempt (status code, first bytes of the answer) is the outcome's `status` and `detail`.

With a tracer, each attempt is a `delivery attempt` span (a client span, child of the message's
`traceparent`), with its outcome; the channel's call runs inside it (`next_hop`), so the
partner's webhook names this span as its parent.

Every line an attempt logs carries the message's `message_id`, `correlation_id` and `partner`
(`canonical.trace`); the endpoint's disabling by a 410 is logged once, not once per attempt
that was in flight when it came.

A courier is retired when its partner's configuration changes or goes (a reload): it starts no
new attempt, lets those in flight finish, closes its channel, and its `run()` returns. Its
replacement waits for `wait_retired()`, so one delivery is never attempted by two couriers at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Literal

import anyio
import msgspec
from anyio.abc import TaskGroup, TaskStatus

from actors.delivery._breaker import BreakerState, CircuitBreaker
from actors.delivery._policy import DeliveryPolicy, retry_delay
from actors.ports import (
    Delivered,
    DeliveryAttempt,
    DeliveryChannel,
    DeliveryOutcome,
    DeliveryRecord,
    DeliverySource,
    Disable,
    Refused,
    RetryAfter,
)
from actors.ratelimit import TokenBucket
from canonical.errors import GatewayError, StoreUnavailable
from canonical.trace import log_context
from canonical.tracecontext import next_hop, traceparent_of
from canonical.tracing import Span, Tracer

__all__ = [
    "DEFAULT_HEADS_BATCH",
    "DEFAULT_IDLE_WAIT_S",
    "AttemptOutcome",
    "CourierStatistics",
    "DeliveryChannel",
    "DeliverySource",
    "PartnerCourier",
]

log = logging.getLogger(__name__)

# Heads read per pass: above any partner's concurrency, so in-flight heads never hide due ones.
DEFAULT_HEADS_BATCH = 512
# The store's commit hook and operator calls wake a courier; this is the safety net, and how a
# courier notices an `enable_endpoint` or a replay made by another process (the CLI).
DEFAULT_IDLE_WAIT_S = 1.0

AttemptOutcome = Literal["delivered", "retried", "dead", "disabled", "lost"]
"""What became of a delivery after one attempt (the metrics' label), from the channel's outcome."""


class CourierStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """One partner's delivery counters since its courier started."""

    partner_id: str
    delivered: int
    retried: int  # failed attempts with another one scheduled
    dead: int
    in_flight: int
    breaker: BreakerState
    disabled: bool
    paused_until: float  # unix time before which Retry-After forbids a call (0: none)


class PartnerCourier:
    """Delivers one partner's messages; run `run()` in a task group, `wake()` on new work."""

    def __init__(
        self,
        policy: DeliveryPolicy,
        source: DeliverySource,
        channel: DeliveryChannel,
        *,
        clock: Callable[[], float] = time.time,
        heads_batch: int = DEFAULT_HEADS_BATCH,
        idle_wait_s: float = DEFAULT_IDLE_WAIT_S,
        on_attempt: Callable[[str, AttemptOutcome, float], None] | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self.policy = policy
        self._source = source
        self._channel = channel
        self._clock = clock
        self._heads_batch = heads_batch
        self._idle_wait_s = idle_wait_s
        self._on_attempt = on_attempt
        self._tracer = tracer
        self._bucket = TokenBucket(policy.rate_per_second, policy.burst)
        self._breaker = CircuitBreaker(policy.breaker_failures, policy.breaker_cooldown_s)
        self._wakeup = anyio.Event()
        self._in_flight: set[int] = set()
        # Attempts that ended since the last pass read its heads (see `_dispatch`).
        self._finished: set[int] = set()
        self._paused_until = 0.0
        self._disabled = False
        self._gone_answers = 0  # Disables seen: a store read older than one must not undo it
        self._counts = {"delivered": 0, "retried": 0, "dead": 0}
        self._retiring = False
        self._retired = anyio.Event()

    def wake(self) -> None:
        """Look for due deliveries now (new rows committed, endpoint enabled, replay)."""
        self._wakeup.set()

    def retire(self) -> None:
        """Start no new attempt; `run()` returns once those in flight have ended.

        Each attempt is bounded by its channel's own timeout. Pending deliveries stay in the
        store for the partner's next courier.
        """
        self._retiring = True
        self.wake()

    @property
    def retired(self) -> bool:
        """True once a retired courier's attempts have ended and its channel is closed."""
        return self._retired.is_set()

    async def wait_retired(self) -> None:
        """Return once `retired` is true."""
        await self._retired.wait()

    def statistics(self) -> CourierStatistics:
        return CourierStatistics(
            partner_id=self.policy.partner_id,
            delivered=self._counts["delivered"],
            retried=self._counts["retried"],
            dead=self._counts["dead"],
            in_flight=len(self._in_flight - self._finished),
            breaker=self._breaker.state,
            disabled=self._disabled,
            paused_until=self._paused_until,
        )

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Deliver until cancelled or retired.

        Cancelled, the attempts in flight are cancelled with it (they stay pending); retired,
        they finish first. A run after `retire()` (a restart of a crashed one) returns at once.
        """
        task_status.started()
        try:
            await self._passes()
        finally:
            # A connection the channel holds (AMQP) ends with this run, crashed or cancelled;
            # the next run's first attempt opens a new one.
            with anyio.CancelScope(shield=True):
                await self._channel.aclose()
            if self._retiring:
                self._retired.set()

    async def _passes(self) -> None:
        async with anyio.create_task_group() as attempts:
            while not self._retiring:
                # A fresh event before each pass: a wake-up during the pass is kept for the wait.
                wakeup = self._wakeup = anyio.Event()
                try:
                    wait = await self._dispatch(attempts)
                except StoreUnavailable as exc:
                    with log_context(partner=self.policy.partner_id):
                        log.warning("store unavailable, looking again soon: %s", exc)
                    wait = self._idle_wait_s
                with anyio.move_on_after(wait):
                    await wakeup.wait()

    async def _dispatch(self, attempts: TaskGroup) -> float:
        """Start every attempt that may go now; return how long to wait before looking again."""
        partner = self.policy.partner_id
        # An attempt leaves `_in_flight` only here, before the read: one that ends while
        # `heads()` runs may still be pending in that read's snapshot, and must not go twice.
        finished, self._finished = self._finished, set()
        self._in_flight -= finished
        if len(self._in_flight) >= self.policy.concurrency:
            # Every slot is busy (a slow or hanging endpoint): nothing could start, so skip
            # the store reads; the next attempt to end wakes the courier. Without this, each
            # commit made a stuck partner re-read its heads, slowing every other partner.
            return self._idle_wait_s
        gone_answers = self._gone_answers
        disabled = await self._source.endpoint_disabled(partner)
        # A Disable that came during the read is newer than what the read saw.
        self._disabled = disabled or gone_answers != self._gone_answers
        if self._disabled:
            return self._idle_wait_s
        now = self._clock()
        if self._paused_until > now:
            return min(self._paused_until - now, self._idle_wait_s)
        heads = await self._source.heads(partner, self._heads_batch)
        if self._retiring:  # retired during the reads: no new attempt
            return 0.0
        waits = [self._idle_wait_s]
        for delivery in heads:
            if delivery.id in self._in_flight:
                continue
            if delivery.next_attempt_at > now:
                waits.append(delivery.next_attempt_at - now)
                break  # soonest due first: the rest are later still
            if len(self._in_flight - self._finished) >= self.policy.concurrency:
                break  # a finishing attempt wakes the courier
            if not self._breaker.ready():
                waits.append(self._breaker.wait_s() or self._idle_wait_s)
                break
            token_wait = self._bucket.take()
            if token_wait:
                waits.append(token_wait)
                break
            self._breaker.begin()
            self._in_flight.add(delivery.id)
            attempts.start_soon(self._attempt, delivery, name=f"deliver-{delivery.message_id}")
        return max(0.0, min(waits))

    async def _attempt(self, delivery: DeliveryRecord) -> None:
        span = None if self._tracer is None else self._span(self._tracer, delivery)
        outcome: AttemptOutcome = "lost"
        try:
            with log_context(
                message_id=delivery.message_id,
                correlation_id=delivery.correlation_id,
                partner=delivery.partner_id,
            ):
                try:
                    outcome, latency = await self._deliver(delivery, span)
                except StoreUnavailable as exc:
                    # The attempt's record is lost, the delivery stays pending: it goes again
                    # later, with the same message id, and the partner dedups it.
                    log.warning("could not record a delivery attempt: %s", exc)
                    outcome, latency = "lost", 0.0
        finally:
            self._finished.add(delivery.id)
            self.wake()
            if span is not None:
                span.set_attribute("gateway.outcome", outcome)
                span.end(None if outcome == "delivered" else outcome)
        if outcome in self._counts:
            self._counts[outcome] += 1
        if self._on_attempt is not None:
            self._on_attempt(self.policy.partner_id, outcome, latency)

    def _span(self, tracer: Tracer, delivery: DeliveryRecord) -> Span:
        """Start the attempt's span: a child of the message's trace, or a trace of its own."""
        return tracer.start(
            "delivery attempt",
            traceparent_of(delivery.body),
            kind="client",
            attributes={
                "gateway.partner": delivery.partner_id,
                "messaging.message.id": delivery.message_id,
                "gateway.document_type": delivery.document_type,
                "gateway.attempt": delivery.attempts + 1,
            },
        )

    async def _send(
        self, delivery: DeliveryRecord, started: float, span: Span | None
    ) -> DeliveryOutcome:
        """The channel's call, inside the attempt's span when there is one."""
        if span is None:
            return await self._channel.send(delivery, int(started))
        with next_hop(span.traceparent):
            return await self._channel.send(delivery, int(started))

    async def _deliver(
        self, delivery: DeliveryRecord, span: Span | None = None
    ) -> tuple[AttemptOutcome, float]:
        """Make one attempt and settle it; return what became of the delivery and the latency."""
        started = self._clock()
        try:
            outcome: DeliveryOutcome = await self._send(delivery, started, span)
        except GatewayError as exc:
            # The channel failed to say: no answer is a failure like any other.
            outcome = RetryAfter(reason=str(exc), latency_s=self._clock() - started)
        attempt = DeliveryAttempt(
            attempted_at=started,
            status=outcome.status,
            latency_s=outcome.latency_s,
            error=None if isinstance(outcome, Delivered) else outcome.reason,
            response_head=outcome.detail,
        )
        match outcome:
            case Delivered():
                self._breaker.success()
                await self._source.settle(delivery.id, attempt, "delivered")
                return "delivered", outcome.latency_s
            case Refused():
                # The partner's side answered: nothing is wrong with reaching it.
                self._breaker.neutral()
                await self._source.settle(delivery.id, attempt, "dead", reason=outcome.reason)
                log.error("delivery refused, dead-lettered: %s", outcome.reason)
                return "dead", outcome.latency_s
            case Disable():
                await self._disable(delivery, attempt, outcome.reason)
                return "disabled", outcome.latency_s
            case RetryAfter():
                if outcome.healthy:
                    self._breaker.neutral()
                else:
                    self._breaker.failure()
                result = await self._failed(
                    delivery, attempt, outcome.reason, retry_after=outcome.delay_s
                )
                return result, outcome.latency_s

    async def _disable(self, delivery: DeliveryRecord, attempt: DeliveryAttempt, why: str) -> None:
        """Disable the endpoint; the delivery stays pending for when an operator enables it."""
        self._breaker.neutral()
        # Attempts in flight when the first Disable came are disabled too: one event, one line.
        newly = not self._disabled
        self._disabled = True
        self._gone_answers += 1
        reason = f"{why}: endpoint disabled until an operator enables it"
        await self._source.disable_endpoint(self.policy.partner_id, reason)
        await self._source.settle(
            delivery.id, attempt, "retry", next_attempt_at=self._clock(), reason=reason
        )
        if newly:
            log.warning("endpoint disabled until an operator enables it: %s", why)

    async def _failed(
        self,
        delivery: DeliveryRecord,
        attempt: DeliveryAttempt,
        reason: str,
        *,
        retry_after: float | None,
    ) -> AttemptOutcome:
        policy = self.policy
        now = self._clock()
        if retry_after is not None:
            retry_after = min(retry_after, policy.max_retry_after_s)
            # Every call to this endpoint waits, not only this message's.
            self._paused_until = max(self._paused_until, now + retry_after)
        delay = retry_delay(policy.retry_schedule_s, delivery.attempts + 1, policy.jitter)
        if delay is not None:
            delay = max(delay, retry_after or 0.0)
        if delay is None or now + delay - delivery.created_at > policy.max_age_s:
            spent = "retries spent" if delay is None else "too old to retry"
            await self._source.settle(delivery.id, attempt, "dead", reason=f"{reason} ({spent})")
            log.error("delivery dead-lettered: %s (%s)", reason, spent)
            return "dead"
        await self._source.settle(
            delivery.id, attempt, "retry", next_attempt_at=now + delay, reason=reason
        )
        return "retried"
