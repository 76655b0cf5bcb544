"""What partners have not acknowledged: a gauge per partner, an exception per set at fault.

(What the X12 tables no longer need goes in the store's purge: `[store] x12_retention_s`.)

Each sweep, for every partner that receives X12 files (`[partners.edi] send_as_x12`): the
count of sets sent more than `unacknowledged_after_s` ago that no 997/999 has answered sets
`gateway_edi_unacknowledged_sets{partner}`; each such set, and each set a partner's 997
rejected, becomes one `ExceptionNotice` in the outbox (late_acknowledgement, or
delivery_failed with the partner's AK3/AK4 codes), committed with the mark that it was raised,
so it is raised once. `gateway edi unacknowledged` lists the same sets from the store.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import sqlite3
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import anyio
from anyio.abc import TaskStatus
from prometheus_client import Gauge

from canonical import DocumentRef, ExceptionNotice, encode_envelope, new_envelope, routing_key
from canonical.errors import ConfigError
from canonical.files import FileRow
from canonical.ids import new_message_id
from canonical.notices import ExceptionKind
from gateway.config import load_config
from gateway.config.partners import PartnerConfig
from gateway.store import Store
from gateway.store.edi import SentRecord, read_sent

__all__ = [
    "DEFAULT_SWEEP_INTERVAL_S",
    "MAX_FLAGGED_PER_SWEEP",
    "AcknowledgementWatch",
    "list_unacknowledged",
    "parse_age",
]

log = logging.getLogger(__name__)

# How often the watch looks: acks are due within hours, a minute late is on time.
DEFAULT_SWEEP_INTERVAL_S = 60.0
# Exceptions one partner's sweep raises at most; the rest wait for the next sweep.
MAX_FLAGGED_PER_SWEEP = 100


class AcknowledgementWatch:
    """Sweeps the sets sent for missing or rejecting 997s (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        partners: Sequence[PartnerConfig],
        *,
        gauge: Gauge | None = None,
        interval_s: float = DEFAULT_SWEEP_INTERVAL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self.reconfigure(partners)
        self._gauge = gauge
        self._interval_s = interval_s
        self._clock = clock

    def reconfigure(self, partners: Sequence[PartnerConfig]) -> None:
        """Sweep `partners` (a reloaded configuration's) from the next sweep on."""
        self._partners = [p for p in partners if p.edi.send_as_x12]

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Sweep every interval until cancelled."""
        task_status.started()
        while True:
            await self.sweep()
            await anyio.sleep(self._interval_s)

    async def sweep(self) -> int:
        """One pass over every partner; returns the exceptions raised."""
        raised = 0
        for partner in self._partners:
            before = self._clock() - partner.edi.unacknowledged_after_s
            if self._gauge is not None:
                count = await self._store.edi.unacknowledged_count(partner.id, before)
                self._gauge.labels(partner.id).set(count)
            due = await self._store.edi.to_flag(partner.id, before, MAX_FLAGGED_PER_SWEEP)
            if due:
                await self._store.edi.flag([s.id for s in due], [self._row(s) for s in due])
                raised += len(due)
                log.warning(
                    "X12 sets rejected or not acknowledged",
                    extra={"fields": {"partner": partner.id, "sets": len(due)}},
                )
        return raised

    def _row(self, sent: SentRecord) -> FileRow:
        now = dt.datetime.fromtimestamp(self._clock(), dt.UTC)
        where = f"interchange {sent.interchange}, group {sent.group}, set {sent.transaction_set}"
        kind: ExceptionKind
        if sent.status == "rejected":
            kind = "delivery_failed"
            codes = " ".join(sent.codes) or "none given"
            description = f"{sent.set_id} rejected by the partner's 997 ({where}; codes {codes})"
        else:
            kind = "late_acknowledgement"
            description = f"{sent.set_id} not acknowledged by a 997 ({where})"
        notice = ExceptionNotice(
            exception_id=new_message_id(),
            kind=kind,
            severity="error",
            raised_at=now,
            reference=DocumentRef(document_type=sent.document_type, message_id=sent.message_id),
            correlation_id=sent.correlation_id,
            description=description,
        )
        envelope = new_envelope(
            notice,
            partner_id=sent.partner_id,
            idempotency_key=f"edi-sent:{sent.id}:{sent.status}",
            correlation_id=sent.correlation_id,
            causation_id=sent.message_id,
            received_at=now,
        )
        return FileRow(
            position=0,
            message_id=envelope.message_id,
            document_type=envelope.document_type,
            schema_version=envelope.schema_version,
            routing_key=routing_key(envelope.document_type, envelope.partner_id),
            correlation_id=envelope.correlation_id,
            causation_id=envelope.causation_id,
            idempotency_key=envelope.idempotency_key,
            body=encode_envelope(envelope),
        )


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_age(text: str) -> float:
    """Seconds in "90m", "24h", "2d", "30s" or a bare number of seconds; `ValueError` if not."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if found is None:
        raise ValueError(f"{text!r} is not an age (like 90m, 24h, 2d)")
    return float(found[1]) * _UNITS[found[2] or "s"]


def list_unacknowledged(
    config_path: Path,
    environ: Mapping[str, str],
    *,
    older_than: str,
    partner: str | None = None,
    limit: int = 1000,
    as_json: bool = False,
    now: float | None = None,
) -> int:
    """`gateway edi unacknowledged`: the sets sent and not answered, read from the store file.

    No gateway needs to be running. Exits 0 when there is none, 1 when some are listed, 2
    when the config, the age or the store cannot be read.
    """
    try:
        age = parse_age(older_than)
        # It reads the store: no secret is needed (stand-ins for the references).
        config = load_config(config_path, environ, resolve_secrets=False)
    except ValueError as exc:
        print(f"gateway edi unacknowledged: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        for line in [error.message for error in exc.errors] or [exc.detail]:
            print(f"gateway edi unacknowledged: {line}", file=sys.stderr)
        return 2
    path = Path(config.store.path)
    if not path.exists():
        print(f"gateway edi unacknowledged: no store at {path}", file=sys.stderr)
        return 2
    at = time.time() if now is None else now
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            found = read_sent(
                conn,
                status="unacknowledged",
                sent_before=at - age,
                partner_id=partner,
                limit=limit,
            )
    except sqlite3.Error as exc:
        print(f"gateway edi unacknowledged: {path}: {exc}", file=sys.stderr)
        return 2
    for sent in found:
        print(_line(sent, at, as_json=as_json))
    return 1 if found else 0


def _line(sent: SentRecord, now: float, *, as_json: bool) -> str:
    sent_at = dt.datetime.fromtimestamp(sent.sent_at, dt.UTC).isoformat(timespec="seconds")
    if as_json:
        import msgspec

        fields = msgspec.structs.asdict(sent) | {"sent_at": sent_at}
        return msgspec.json.encode(fields).decode()
    hours = (now - sent.sent_at) / 3600
    return (
        f"{sent_at}  {sent.partner_id}  {sent.set_id} ISA13 {sent.interchange} "
        f"GS06 {sent.group} ST02 {sent.transaction_set}  {sent.document_type} "
        f"{sent.message_id or '-'}  {hours:.1f} h unacknowledged"
    )
