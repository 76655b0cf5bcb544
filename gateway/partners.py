"""The gateway's side of partner ingress: directory, acceptor, partner intakes, dead letters.

The webhook ingress (protocols/http) knows only the small `PartnerDirectory` and `Acceptor`
interfaces; `Partners` implements both by having the partner's intake turn the request into an
`Acceptance` and committing it through the store. The runtime's dead-letter sink writes to the
store too.
"""

from __future__ import annotations

import logging
import traceback

import msgspec

from actors.partner import PartnerIntake, PartnerPolicy, Submission
from canonical.errors import GatewayError
from gateway.config import GatewayConfig
from gateway.logs import log_context
from gateway.store import Store
from protocols.http.contract import AcceptedResponse, IngressPolicy, WebhookRequest

__all__ = ["IntakeCrashDetail", "Partners", "StoreDeadLetters", "crash_reason"]

logger = logging.getLogger(__name__)


def crash_reason(error: BaseException) -> str:
    """The reason a dead letter kept after a crash gives: the exception's type and text."""
    return f"{type(error).__name__}: {error}"


class IntakeCrashDetail(msgspec.Struct, frozen=True, kw_only=True):
    """A crashed webhook's dead letter `detail` (JSON): the trace, and the request besides its body.

    Enough to take it through the partner's intake again once the bug is fixed (gateway/
    resubmit.py), under the same idempotency key: a partner retry that got in first wins.
    """

    trace: str
    document_type: str
    idempotency_key: str
    webhook_id: str | None
    received_at: float


class StoreDeadLetters:
    """The runtime's dead-letter sink, kept in the store's `dead_letters` table."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def dead_letter(self, *, actor: str, message: object, error: BaseException) -> None:
        partner_id = getattr(message, "partner_id", None)
        payload = getattr(message, "body", b"")
        await self.crashed(
            source=f"actor:{actor}",
            error=error,
            payload=payload if isinstance(payload, bytes) else repr(message).encode(),
            partner_id=partner_id if isinstance(partner_id, str) else None,
        )

    async def crashed(
        self, *, source: str, error: BaseException, payload: bytes, partner_id: str | None
    ) -> None:
        """Keep what `source` crashed on, with the error as the reason and its trace."""
        await self.store.dead_letter(
            source=source,
            reason=crash_reason(error),
            detail="".join(traceback.format_exception(error)),
            payload=payload,
            partner_id=partner_id,
        )


class Partners:
    """The ingress's partner directory and acceptor: partner intake, then the store.

    `reconfigure` swaps the directory for a reloaded configuration's (gateway/reload.py). A
    request looked up before the swap finishes on what it looked up: its partner's intake is
    kept even when the reload removed the partner, and a partner whose rate limit did not
    change keeps its token bucket.
    """

    def __init__(self, config: GatewayConfig, store: Store) -> None:
        self.store = store
        self.policies: dict[str, IngressPolicy] = {}
        self.intakes: dict[str, PartnerIntake] = {}
        self.reconfigure(config)

    def reconfigure(self, config: GatewayConfig) -> None:
        """Take `config`'s partners: secrets, documents, body limits and rate limits."""
        intakes = dict(self.intakes)  # a removed partner's, for its requests in flight
        for p in config.partners:
            policy = PartnerPolicy(
                partner_id=p.id, rate_per_second=p.rate_limit.per_second, burst=p.rate_limit.burst
            )
            kept = intakes.get(p.id)
            if kept is None or kept.policy != policy:
                intakes[p.id] = PartnerIntake(policy)
        self.policies = {
            p.id: IngressPolicy(
                keys=tuple(s.key for s in p.secrets),
                max_body_bytes=p.max_body_bytes,
                allowed_documents=p.sends,
            )
            for p in config.partners
        }
        self.intakes = intakes

    def lookup(self, partner_id: str, /) -> IngressPolicy | None:
        return self.policies.get(partner_id)

    async def accept(self, request: WebhookRequest, /) -> AcceptedResponse:
        submission = Submission(
            partner_id=request.partner_id,
            document_type=request.document_type,
            body=request.body,
            idempotency_key=request.webhook_id,
            alias_key=request.idempotency_key,
            causation_id=request.webhook_id,
            received_at=request.received_at,
            traceparent=request.traceparent,
        )
        with log_context(partner=request.partner_id):
            try:
                acceptance = self.intakes[request.partner_id].admit(submission)
                accepted = await self.store.accept(acceptance)
            except GatewayError:
                raise
            except Exception as crash:
                # A bug, not a refusal: the partner gets 500 (and retries); the body is kept.
                await self._keep_crash(submission, crash)
                raise
        return AcceptedResponse(
            status=accepted.status, body=accepted.body, replayed=accepted.replayed
        )

    async def _keep_crash(self, submission: Submission, crash: Exception) -> None:
        """Keep a request the intake or the store crashed on as a dead letter, with the trace."""
        detail = IntakeCrashDetail(
            trace="".join(traceback.format_exception(crash)),
            document_type=submission.document_type,
            idempotency_key=submission.idempotency_key,
            webhook_id=submission.causation_id,
            received_at=submission.received_at,
        )
        try:
            await self.store.dead_letter(
                source=f"intake:{submission.partner_id}",
                reason=crash_reason(crash),
                detail=msgspec.json.encode(detail).decode(),
                payload=submission.body,
                partner_id=submission.partner_id,
            )
        except Exception:
            logger.exception("could not keep the crashed request as a dead letter")
