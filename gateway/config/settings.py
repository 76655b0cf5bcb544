"""The process-wide sections of the configuration file, each with the defaults a laptop runs on."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Annotated, Literal

import msgspec

from gateway.config.base import (
    MAX_BODY_BYTES_CEILING,
    MIB,
    Base,
    BodyBytes,
    Count,
    Host,
    Name,
    Port,
    Problem,
    Seconds,
    join_host_port,
    known,
)
from gateway.config.customers import CustomerApiSettings, CustomerConfig, customer_problems
from gateway.config.erp import ErpSettings
from gateway.config.inventory import InventorySettings
from gateway.config.partners import PartnerConfig
from gateway.config.rules import whole_config_problems
from gateway.config.secrets import AmqpUrl, Secret
from gateway.config.sftp import DropBoxSettings
from gateway.config.telemetry import TelemetrySettings
from gateway.config.workflow import WorkflowSettings
from protocols.http.admin_guard import is_loopback

__all__ = [
    "AdminSettings",
    "AmqpSettings",
    "GatewayConfig",
    "HttpSettings",
    "LogSettings",
    "RuntimeSettings",
    "StoreSettings",
    "join_host_port",
]

DAY_S = 24 * 3600
# Seconds a kind of row is kept; 0 keeps it for ever.
RetentionSeconds = Annotated[int, msgspec.Meta(ge=0)]
KIB = 1024
BytesInFlight = Annotated[int, msgspec.Meta(ge=KIB, le=1 << 40)]


class HttpSettings(Base, frozen=True):
    """The partner-facing HTTP listener (webhook ingress)."""

    host: Host = "127.0.0.1"
    port: Port = 8080
    # Ceiling for any request body, enforced before the partner is known; each partner's own
    # `max_body_bytes` must fit under it.
    max_body_bytes: BodyBytes = MIB
    backlog: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 2048
    # Requests in flight at once (complete heads whose answer is not sent); past it the server
    # answers 503 with Retry-After instead of queueing in memory. Idle connections and heads
    # still arriving do not count.
    max_concurrent_requests: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 1024
    # Open connections; past it a new one closes the one idle longest. Kept below the process's
    # RLIMIT_NOFILE (lowered with a warning at start otherwise).
    max_connections: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 10_000
    keep_alive_s: Seconds = 5.0
    # A request line and headers must arrive within this, from the connection opening or the
    # request's first byte; otherwise 408 (or a silent close if nothing came) and the
    # connection closes. Real partners send a head in one packet.
    head_timeout_s: Seconds = 5.0
    # A body gets body_timeout_s plus 1 s per body_min_bytes_per_s bytes received (Apache
    # mod_reqtimeout's MinRate), else 408 and close: 16 KiB/s is 128 kbit/s, far below any
    # partner's uplink, yet it makes each slot an attacker holds cost bandwidth.
    body_timeout_s: Seconds = 10.0
    body_min_bytes_per_s: Annotated[int, msgspec.Meta(ge=1, le=MAX_BODY_BYTES_CEILING)] = 16 * KIB
    # Request line plus headers, and the count of header fields; over either: 431.
    max_head_bytes: Annotated[int, msgspec.Meta(ge=KIB, le=MIB)] = 32 * KIB
    max_headers: Annotated[int, msgspec.Meta(ge=8, le=10_000)] = 100
    # Standard Webhooks: every reference library accepts timestamps within five minutes.
    signature_tolerance_s: Annotated[int, msgspec.Meta(ge=1, le=3600)] = 300
    # Request bodies held at once (protocols/http/budget.py), all partners and per partner; a
    # request takes its Content-Length (a chunked one its partner's max_body_bytes) before its
    # body is read, until it is answered. Memory for requests in flight is a small multiple.
    max_body_bytes_in_flight: BytesInFlight = 32 * MIB
    max_partner_body_bytes_in_flight: BytesInFlight = 8 * MIB
    # How long a request waits for that room before it gets 503 with Retry-After.
    body_wait_s: Seconds = 5.0

    def problems(self) -> Iterator[Problem]:
        # Each bound must admit the one below it, or a largest body could never be read.
        with known():
            if self.max_partner_body_bytes_in_flight < self.max_body_bytes:
                yield (
                    "max_partner_body_bytes_in_flight",
                    f"below max_body_bytes ({self.max_body_bytes})",
                )
        with known():
            if self.max_body_bytes_in_flight < self.max_partner_body_bytes_in_flight:
                yield (
                    "max_body_bytes_in_flight",
                    f"below max_partner_body_bytes_in_flight "
                    f"({self.max_partner_body_bytes_in_flight})",
                )


class AdminSettings(Base, frozen=True):
    """The operator listener: health, metrics, replay. Keep it off the partner-facing address."""

    host: Host = "127.0.0.1"
    port: Port = 9090
    # `Authorization: Bearer <token>` on every route but /healthz and /readyz; a `whsec_...`
    # secret, inline, { env = "NAME" } or { file = "PATH" }. Required off loopback.
    token: Secret | None = None
    # Host names the listener answers to besides IP literals and `localhost` (DNS rebinding).
    allowed_hosts: tuple[Host, ...] = ()

    def problems(self) -> Iterator[Problem]:
        with known():
            if self.token is None and not is_loopback(self.host):
                yield (
                    "token",
                    f"required when host is not a loopback address ({self.host!r}): "
                    "anyone who reaches the listener could read dead letters and replay them",
                )


class StoreSettings(Base, frozen=True):
    """The SQLite store: inbox, outbox, dedup keys, workflow state."""

    # Relative paths are taken from the working directory, as SQLite itself does.
    path: Name = "var/gateway.db"
    # FULL survives power loss; NORMAL may lose the last commits on power loss.
    synchronous: Literal["FULL", "NORMAL"] = "FULL"
    # Writes that share one commit (group commit).
    max_batch: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 512
    # At least a day: webhook senders retry for a day or more (Standard Webhooks, Svix), and a
    # key purged before the last retry lets that retry through as a new message.
    idempotency_retention_s: Annotated[int, msgspec.Meta(ge=DAY_S)] = 7 * DAY_S
    # Retention of the rest: seconds a row is kept once nothing needs it; 0 keeps it for ever.
    # Outbox rows once the broker confirmed them (pending rows are never purged).
    outbox_retention_s: RetentionSeconds = DAY_S
    # Delivered deliveries and their attempts, from delivery (pending ones are never purged).
    delivery_retention_s: RetentionSeconds = 7 * DAY_S
    # Dead letters, and the dead outbox rows and deliveries their replay needs: operators
    # look at them days later, so they outlive the rest.
    dead_letter_retention_s: RetentionSeconds = 30 * DAY_S
    # Closed purchase-order threads, from their last step, with their journal and timers (a
    # document for one after that opens a new thread, which ends as unknown_purchase_order).
    closed_thread_retention_s: RetentionSeconds = 90 * DAY_S
    # Journal rows of every thread (what the trace shows; the consumed marks are also in each
    # thread's state), from when they were applied.
    workflow_journal_retention_s: RetentionSeconds = 180 * DAY_S
    # Inventory positions' consumed marks and drift records, from when they were written.
    inventory_retention_s: RetentionSeconds = 90 * DAY_S
    # Customer orders delivered or cancelled, from the last status report heard (an order
    # still open is never purged: its status is still asked for and still moves).
    customer_order_retention_s: RetentionSeconds = 90 * DAY_S
    # X12 files put and sets answered (or raised as unacknowledged), from when they were sent;
    # interchange keys received, from when they were received, and never before the longest
    # `[partners.edi] replay_window_s` (the replay check needs them that long).
    x12_retention_s: RetentionSeconds = 90 * DAY_S
    # How often the purge runs: the store overshoots its steady size by this much ingest.
    purge_interval_s: Seconds = 600.0
    # Time a purge's chunk (one transaction) aims to hold the writer; acceptances go between.
    purge_chunk_s: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.01


class AmqpSettings(Base, frozen=True):
    """The RabbitMQ connection, the exchanges the gateway declares, and the relay's bounds."""

    RETIRED = {
        "prefetch_count": "it was read nowhere; each [[erp.consumers]] has its own prefetch",
    }

    # No default: a broker the operator did not name is a broker the gateway must not guess.
    # Inline, { env = "VAR" } or { file = "path" }; repr() and logs never show the password.
    url: AmqpUrl
    events_exchange: Name = "gateway.events"  # topic, routing keys `{document}.{partner}`
    dead_letter_exchange: Name = "gateway.dlx"
    # Publishes awaiting a broker confirm at once.
    confirm_window: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 512
    relay_batch_size: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 256
    reconnect_min_s: Seconds = 0.5
    reconnect_max_s: Seconds = 30.0

    def problems(self) -> Iterator[Problem]:
        with known():
            if self.reconnect_min_s > self.reconnect_max_s:
                yield "reconnect_min_s", f"greater than reconnect_max_s ({self.reconnect_max_s})"
        with known():
            if self.dead_letter_exchange == self.events_exchange:
                # The parking lot is bound to it with `#`: it would keep a copy of every event.
                yield "dead_letter_exchange", "same as events_exchange; name another exchange"

    @property
    def address(self) -> str:
        """Return the broker's host:port, without credentials."""
        return self.url.address


class RuntimeSettings(Base, frozen=True):
    """The actor runtime: mailboxes, asks, passivation, supervision, shutdown."""

    mailbox_size: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 1024
    ask_timeout_s: Seconds = 10.0
    passivate_after_s: Seconds = 300.0
    # One-for-one restart budget: more than max_restarts within restart_period_s escalates.
    max_restarts: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 5
    restart_period_s: Seconds = 60.0
    # Crashes on one message before it is dead-lettered instead of retried.
    poison_threshold: Count = 3
    shutdown_deadline_s: Seconds = 10.0
    # Couriers and the relay are restarted at their own, slower pace (a courier's crash is a
    # bug; the relay's, often a broker refusing a declare, which takes an operator minutes to
    # fix): more restarts than these within the period and the gateway stops with the error.
    courier_max_restarts: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 10
    courier_restart_period_s: Seconds = 600.0
    relay_max_restarts: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 12
    relay_restart_period_s: Seconds = 900.0


class LogSettings(Base, frozen=True):
    """Logging: the threshold level. Lines are JSON objects, one per line (gateway/logs.py)."""

    RETIRED = {"format": "log lines are always JSON; delete the key"}

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"


class GatewayConfig(Base, frozen=True, kw_only=True, dict=True):
    """The whole configuration, loaded once at the composition root and passed down."""

    http: HttpSettings = HttpSettings()
    admin: AdminSettings = AdminSettings()
    store: StoreSettings = StoreSettings()
    # Required: the broker's URL has no default (see AmqpSettings.url).
    amqp: AmqpSettings
    runtime: RuntimeSettings = RuntimeSettings()
    log: LogSettings = LogSettings()
    erp: ErpSettings = ErpSettings()
    workflow: WorkflowSettings = WorkflowSettings()
    # Off unless the file has an [inventory] table (gateway/config/inventory.py).
    inventory: InventorySettings = InventorySettings(enabled=False)
    # The hosted SFTP drop box, for partners with `[partners.sftp.hosted]` (config/sftp.py).
    sftp_dropbox: DropBoxSettings | None = None
    # At least one: `whole_config_problems` refuses a gateway without partners.
    partners: tuple[PartnerConfig, ...] = ()
    # The customer API's listener and accounts (gateway/config/customers.py); off without it.
    customer_api: CustomerApiSettings | None = None
    customers: tuple[CustomerConfig, ...] = ()
    # Spans exported over OTLP (gateway/config/telemetry.py); none recorded without it.
    telemetry: TelemetrySettings | None = None

    def problems(self) -> Iterator[Problem]:
        # The rules across sections live apart: they are most of what makes a file unworkable.
        yield from whole_config_problems(self)
        with known():
            ids = {p.id for p in self.partners} | {self.erp.source}
            yield from customer_problems(self.customers, self.customer_api, ids)

    @functools.cached_property
    def _partners_by_id(self) -> dict[str, PartnerConfig]:
        # `dict=True` gives the frozen Struct a __dict__ for this cache.
        return {p.id: p for p in self.partners}

    @functools.cached_property
    def partner_ids(self) -> tuple[str, ...]:
        """The partners' ids, in file order."""
        return tuple(p.id for p in self.partners)

    def partner(self, partner_id: str) -> PartnerConfig | None:
        """Return the partner with this id, or None."""
        return self._partners_by_id.get(partner_id)
