"""One partner's configuration: identity, signing secrets, allowed documents, limits, format."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import msgspec

from canonical import DOCUMENT_TYPES
from canonical.x12 import X12Profile
from gateway.config.base import MIB, Base, BodyBytes, Name, Problem, known
from gateway.config.delivery import AmqpOutbound, PullOutbound, WebhookOutbound
from gateway.config.edi import EdiSettings
from gateway.config.files import FileChannelConfig, source_problems
from gateway.config.secrets import Secret
from gateway.config.sftp import SftpChannel
from gateway.config.tables import did_you_mean

__all__ = [
    "CHANNELS",
    "MAX_LIVE_SECRETS",
    "PARTNER_ID_PATTERN",
    "PartnerConfig",
    "RateLimit",
    "channel_of",
    "known_document_types",
]

# Lower-case so ids sit safely in URL paths, AMQP routing keys and file names.
PARTNER_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
# Rotation keeps the old and the new secret live together; a third is a forgotten one.
MAX_LIVE_SECRETS = 2
# The tables a partner's messages leave by; a partner has one at most.
CHANNELS = ("outbound", "outbound_amqp", "pull")


def known_document_types() -> frozenset[str]:
    """Return the document types partners may name: the canonical registry's keys."""
    return frozenset(DOCUMENT_TYPES)


class RateLimit(Base, frozen=True):
    """A token bucket: `per_second` tokens refill, up to `burst` requests at once."""

    per_second: Annotated[float, msgspec.Meta(gt=0)] = 50.0
    burst: Annotated[int, msgspec.Meta(ge=1)] = 100


class PartnerConfig(Base, frozen=True):
    """One trading partner as the gateway knows it."""

    RETIRED = {"format": "partner documents are always JSON; delete the key"}

    id: Annotated[str, msgspec.Meta(pattern=PARTNER_ID_PATTERN)]
    name: Name
    # One live secret, or two while rotating: a signature made with either is accepted.
    secrets: Annotated[tuple[Secret, ...], msgspec.Meta(min_length=1, max_length=MAX_LIVE_SECRETS)]
    sends: frozenset[str] = frozenset()  # document types the partner may send to us
    receives: frozenset[str] = frozenset()  # document types we may send to the partner
    rate_limit: RateLimit = RateLimit()
    # At most [http] max_body_bytes, the ceiling checked before the partner is known; the loader
    # fills in that ceiling when the partner leaves it out.
    max_body_bytes: BodyBytes = MIB
    # Where the gateway delivers the documents in `receives` (gateway/config/delivery.py).
    outbound: WebhookOutbound | None = None
    # Or: they are published to the partner's AMQP exchange (`[partners.outbound_amqp]`).
    outbound_amqp: AmqpOutbound | None = None
    # Or: the partner pulls its messages (`[partners.pull]`, gateway/config/delivery.py).
    pull: PullOutbound | None = None
    # Files over SFTP, its own server or the hosted drop box (`[partners.sftp]`, config/sftp.py).
    sftp: SftpChannel | None = None
    # Files the partner drops: a folder polled, file patterns per document (config/files.py).
    files: FileChannelConfig | None = None
    # The partner's X12: its profile (canonical.x12.X12Profile; the default one when absent)
    # and the gateway's settings for it (config/edi.py).
    x12: X12Profile | None = None
    edi: EdiSettings = EdiSettings()

    def problems(self) -> Iterator[Problem]:
        known_types = known_document_types()
        for direction in ("sends", "receives"):
            with known():
                for document in sorted(getattr(self, direction) - known_types):
                    hint = did_you_mean(document, known_types)
                    yield direction, f"unknown document type {document!r}{hint}"
        with known():
            channels = [name for name in CHANNELS if getattr(self, name) is not None]
            if len(channels) > 1:
                first, second = channels[:2]
                yield second, f"a partner has one outbound channel, {first} already"
        with known():
            yield from source_problems(self.files, self.sftp)
        # X12 (inline: on a Draft, a method of the class is not there).
        with known():
            if self.x12 is not None and (self.x12.sender_qualifier, self.x12.sender_id) == (
                self.x12.receiver_qualifier,
                self.x12.receiver_id,
            ):
                yield "x12.receiver_id", "the partner's interchange id is the gateway's own"
        with known():
            # The channel's poller puts outgoing files on its rounds: no [partners.files],
            # no rounds.
            if self.edi.send_as_x12 and self.files is None:
                yield (
                    "edi.send_as_x12",
                    "X12 files go out through a file channel: add [partners.files]",
                )
        with known():
            for document in sorted(self.edi.send_as_x12 - self.receives):
                yield "edi.send_as_x12", f"{document!r} is not in receives"


def channel_of(partner: Any) -> str | None:
    """Return the name of the table `partner`'s messages leave by, or None if it has none.

    `partner` is a PartnerConfig, or its Draft while the loader checks a broken file.
    """
    return next((name for name in CHANNELS if getattr(partner, name) is not None), None)
