"""Wiring for SFTP: a partner's `[partners.sftp]` table made into a transport, secrets revealed
only here, at the boundary where the transport takes them.

`source_for(partner)` gives the `FileSource` a poller reads (its own server: `SftpSource`);
`drop_box(settings, partners)` the hosted server for every partner with a `hosted` folder
(`drop_box_partners(partners)` who may log in, for `DropBox.reconfigure` on a reload). A
hosted partner's `FileSource` is a local folder (`DropBox.folder_of(partner id)`), which the file
intake provides (protocols/files).

`ChannelWatch` is how a failing SFTP round reaches an operator: a server that does not answer
is retried by the next round and logged once per outage; a server that refuses (not the pinned
host key, the login refused, an address the egress guard refuses) fails the same way until
someone acts, and is logged at ERROR and raised in `gateway_file_channel_refused`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge

from actors.files.source import FileSource
from gateway.config.partners import PartnerConfig
from gateway.config.sftp import DropBoxSettings, SftpChannel
from protocols.http.egress import EgressRefused
from protocols.sftp import (
    DropBox,
    DropBoxPartner,
    SftpEndpoint,
    SftpFolders,
    SftpRefused,
    SftpSource,
    SftpUnavailable,
)

__all__ = [
    "ChannelWatch",
    "FileChannelHealth",
    "drop_box",
    "drop_box_partners",
    "endpoint_of",
    "hosted",
    "source_for",
]

log = logging.getLogger("gateway.files")


def endpoint_of(channel: SftpChannel) -> SftpEndpoint:
    """Return the client endpoint of a channel with its own server (ValueError otherwise)."""
    server = channel.server
    if server is None:
        raise ValueError("a hosted channel has no server to connect to")
    folders = channel.folders
    return SftpEndpoint(
        host=server.host,
        port=server.port,
        username=server.username,
        host_key=server.host_key,
        password=server.password.reveal() if server.password is not None else None,
        private_key=server.private_key.reveal() if server.private_key is not None else None,
        folders=SftpFolders(
            incoming=folders.incoming,
            archive=folders.archive,
            error=folders.error,
            outbound=folders.outbound,
        ),
        allow_networks=server.networks(),
        connect_timeout_s=server.connect_timeout_s,
        operation_timeout_s=server.operation_timeout_s,
        transfer_timeout_s=server.transfer_timeout_s,
        keepalive_interval_s=server.keepalive_interval_s,
        max_listing=server.max_listing,
    )


def source_for(partner: PartnerConfig) -> SftpSource:
    """Return the SFTP source of a partner whose `sftp` table names its own server."""
    if partner.sftp is None:
        raise ValueError(f"partner {partner.id} has no [partners.sftp] table")
    return SftpSource(endpoint_of(partner.sftp))


def hosted(partners: Sequence[PartnerConfig]) -> list[PartnerConfig]:
    """Return the partners whose files arrive in the hosted drop box."""
    return [p for p in partners if p.sftp is not None and p.sftp.hosted is not None]


def drop_box_partners(partners: Sequence[PartnerConfig]) -> list[DropBoxPartner]:
    """Return who may log in to the drop box: every partner whose `sftp` table is `hosted`.

    A reload hands the new config's to the running box: `DropBox.reconfigure`.
    """
    return [
        DropBoxPartner(partner_id=p.id, authorized_keys=p.sftp.hosted.authorized_keys)
        for p in partners
        if p.sftp is not None and p.sftp.hosted is not None
    ]


def drop_box(settings: DropBoxSettings, partners: Sequence[PartnerConfig]) -> DropBox:
    """Return the drop box serving every partner whose `sftp` table is `hosted`."""
    return DropBox(
        root=Path(settings.root),
        host_key=settings.host_key.reveal(),
        partners=drop_box_partners(partners),
        host=settings.host,
        port=settings.port,
        login_timeout_s=settings.login_timeout_s,
        max_connections=settings.max_connections,
        max_partner_connections=settings.max_partner_connections,
        keepalive_interval_s=settings.keepalive_interval_s,
        max_file_bytes=settings.max_file_bytes,
    )


def _as_port(source: SftpSource) -> FileSource:
    """Never called: mypy checks here that `SftpSource` is a `FileSource` (protocols/ cannot
    import the port to say so itself)."""
    return source


class FileChannelHealth:
    """The file channels' metrics, one label set per partner, on the gateway's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.failed_rounds = Counter(
            "gateway_file_channel_failed_rounds",
            "Poll rounds of a partner's file channel that failed, by reason",
            ["partner", "reason"],
            registry=registry,
        )
        self.refused = Gauge(
            "gateway_file_channel_refused",
            "1 while the partner's server is refused (host key, login, egress guard): an"
            " operator must act; nothing is taken meanwhile",
            ["partner"],
            registry=registry,
        )
        self.unavailable = Gauge(
            "gateway_file_channel_unavailable",
            "1 while the partner's server does not answer (retried every round)",
            ["partner"],
            registry=registry,
        )
        self._watches: dict[str, ChannelWatch] = {}

    def watch(self, partner_id: str) -> ChannelWatch:
        """Return the watch of one partner's channel: a new one reads 0; the one it has
        already, when a reload builds the channels again, keeps what it saw."""
        found = self._watches.get(partner_id)
        if found is None:
            self.refused.labels(partner_id).set(0)
            self.unavailable.labels(partner_id).set(0)
            found = self._watches[partner_id] = ChannelWatch(partner_id, self)
        return found

    def forget(self, partner_id: str) -> None:
        """Drop the gauges of a partner that has no file channel any more (a reload removed
        it): a refusal it had must not alert on. Its counters stay, as counters do."""
        self._watches.pop(partner_id, None)
        self.refused.remove(partner_id)
        self.unavailable.remove(partner_id)


class ChannelWatch:
    """One channel's health between rounds (`actors.files.poller.RoundWatch`)."""

    def __init__(self, partner_id: str, health: FileChannelHealth) -> None:
        self.partner_id = partner_id
        self._health = health
        # The reason of the failure under way (one log line per change), or None when well.
        self.failing: str | None = None
        self._failed_rounds = 0

    def succeeded(self) -> None:
        if self.failing is not None:
            log.info(
                "file channel reachable again",
                extra={
                    "fields": {
                        "partner": self.partner_id,
                        "was": self.failing,
                        "failed_rounds": self._failed_rounds,
                    }
                },
            )
            self._health.refused.labels(self.partner_id).set(0)
            self._health.unavailable.labels(self.partner_id).set(0)
        self.failing = None
        self._failed_rounds = 0

    def failed(self, error: Exception) -> bool:
        if isinstance(error, SftpRefused | EgressRefused):
            refused = True
        elif isinstance(error, SftpUnavailable):
            refused = False
        else:
            self._health.failed_rounds.labels(self.partner_id, "other").inc()
            return False  # not the transport's: the poller logs it with its traceback
        reason = error.reason
        self._health.failed_rounds.labels(self.partner_id, reason).inc()
        self._failed_rounds += 1
        self._health.refused.labels(self.partner_id).set(1 if refused else 0)
        self._health.unavailable.labels(self.partner_id).set(0 if refused else 1)
        if self.failing != reason:
            self.failing = reason
            fields = {"partner": self.partner_id, "reason": reason, "error": str(error)}
            if refused:
                log.error(
                    "file channel refused: nothing is taken until the config or the partner's"
                    " server changes",
                    extra={"fields": fields},
                )
            else:
                log.warning(
                    "file channel unavailable; every round retries (logged once per outage)",
                    extra={"fields": fields},
                )
        return True
