"""The process-wide sections of the configuration file, each with the defaults a laptop runs on."""

from __future__ import annotations

import functools
from typing import Annotated, Literal
from urllib.parse import SplitResult, urlsplit

import msgspec

from gateway.config.base import MIB, Base, BodyBytes, Count, Host, Name, Port, Seconds
from gateway.config.erp import ErpSettings
from gateway.config.partners import PartnerConfig
from gateway.config.workflow import WorkflowSettings

__all__ = [
    "AdminSettings",
    "AmqpSettings",
    "GatewayConfig",
    "HttpSettings",
    "LogSettings",
    "RuntimeSettings",
    "StoreSettings",
]

DAY_S = 24 * 3600


def join_host_port(host: str, port: int) -> str:
    """Return host:port, bracketing an IPv6 literal."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _split_url(url: str) -> SplitResult | None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        return None
    return parts


class HttpSettings(Base, frozen=True):
    """The partner-facing HTTP listener (webhook ingress)."""

    host: Host = "127.0.0.1"
    port: Port = 8080
    # Ceiling for any request body, enforced before the partner is known; each partner's own
    # `max_body_bytes` must fit under it.
    max_body_bytes: BodyBytes = MIB
    backlog: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 2048
    # Requests in flight at once; past it the server answers 503 instead of queueing in memory.
    max_concurrent_requests: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 1024
    keep_alive_s: Seconds = 5.0
    # Standard Webhooks: every reference library accepts timestamps within five minutes.
    signature_tolerance_s: Annotated[int, msgspec.Meta(ge=1, le=3600)] = 300


class AdminSettings(Base, frozen=True):
    """The operator listener: health, metrics, replay. Keep it off the partner-facing address."""

    host: Host = "127.0.0.1"
    port: Port = 9090


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
    purge_interval_s: Seconds = 3600.0


class AmqpSettings(Base, frozen=True):
    """The RabbitMQ connection, the exchanges the gateway declares, and the relay's bounds."""

    # May hold a password: never logged as is; `address` and repr() leave the credentials out.
    url: Name = "amqp://guest:guest@127.0.0.1:5672/%2F"
    events_exchange: Name = "gateway.events"  # topic, routing keys `{document}.{partner}`
    dead_letter_exchange: Name = "gateway.dlx"
    # Publishes awaiting a broker confirm at once.
    confirm_window: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 512
    relay_batch_size: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 256
    # Unacknowledged deliveries the broker may push to one consumer.
    prefetch_count: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 256
    reconnect_min_s: Seconds = 0.5
    reconnect_max_s: Seconds = 30.0

    def __post_init__(self) -> None:
        # The messages name the fault, never the URL: it may carry a password.
        parts = _split_url(self.url)
        if parts is None or parts.scheme not in ("amqp", "amqps") or not parts.hostname:
            raise ValueError("url: expected amqp://[user:password@]host[:port]/[vhost]")
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError("reconnect_min_s: greater than reconnect_max_s")

    @property
    def address(self) -> str:
        """Return the broker's host:port, without credentials."""
        parts = urlsplit(self.url)
        default = 5671 if parts.scheme == "amqps" else 5672
        return join_host_port(parts.hostname or "", parts.port or default)

    def __repr__(self) -> str:
        parts = urlsplit(self.url)
        if parts.password is not None:
            parts = parts._replace(netloc=f"{parts.username}:***@{self.address}")
        url = parts.geturl()
        rest = ", ".join(f"{f}={getattr(self, f)!r}" for f in self.__struct_fields__ if f != "url")
        return f"AmqpSettings(url={url!r}, {rest})"


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


class LogSettings(Base, frozen=True):
    """Logging: the threshold level and the line format (one JSON object per line)."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    format: Literal["json"] = "json"


class GatewayConfig(Base, frozen=True, dict=True):
    """The whole configuration, loaded once at the composition root and passed down."""

    http: HttpSettings = HttpSettings()
    admin: AdminSettings = AdminSettings()
    store: StoreSettings = StoreSettings()
    amqp: AmqpSettings = AmqpSettings()
    runtime: RuntimeSettings = RuntimeSettings()
    log: LogSettings = LogSettings()
    erp: ErpSettings = ErpSettings()
    workflow: WorkflowSettings = WorkflowSettings()
    partners: tuple[PartnerConfig, ...] = ()

    def __post_init__(self) -> None:
        if len(self._partners_by_id) != len(self.partners):
            raise ValueError("partners: duplicate partner id")

    @functools.cached_property
    def _partners_by_id(self) -> dict[str, PartnerConfig]:
        # `dict=True` gives the frozen Struct a __dict__ for this cache; built in __post_init__.
        return {p.id: p for p in self.partners}

    def partner(self, partner_id: str) -> PartnerConfig | None:
        """Return the partner with this id, or None."""
        return self._partners_by_id.get(partner_id)
