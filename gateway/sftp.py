"""Wiring for SFTP: a partner's `[partners.sftp]` table made into a transport, secrets revealed
only here, at the boundary where the transport takes them.

`source_for(partner)` gives the `FileSource` a poller reads (its own server: `SftpSource`);
`drop_box(settings, partners)` the hosted server for every partner with a `hosted` folder. A
hosted partner's `FileSource` is a local folder (`DropBox.folder_of(partner id)`), which the file
intake provides (protocols/files).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from actors.files.source import FileSource
from gateway.config.partners import PartnerConfig
from gateway.config.sftp import DropBoxSettings, SftpChannel
from protocols.sftp import DropBox, DropBoxPartner, SftpEndpoint, SftpFolders, SftpSource

__all__ = ["drop_box", "endpoint_of", "source_for"]


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


def drop_box(settings: DropBoxSettings, partners: Sequence[PartnerConfig]) -> DropBox:
    """Return the drop box serving every partner whose `sftp` table is `hosted`."""
    hosted = [
        DropBoxPartner(partner_id=p.id, authorized_keys=p.sftp.hosted.authorized_keys)
        for p in partners
        if p.sftp is not None and p.sftp.hosted is not None
    ]
    return DropBox(
        root=Path(settings.root),
        host_key=settings.host_key.reveal(),
        partners=hosted,
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
