"""Take a dead letter back through the intake that refused it: ERP messages, crashed webhooks.

These dead letters have no row in the store to make pending again (gateway/store/
dead_letters.py): what was refused never got past its intake. Replaying one runs the intake
again on the kept body with the kept properties, under the message's own idempotency key, so
a message that got in meanwhile (the ERP republished it, the partner retried its 500) is
answered from the inbox instead of kept twice. Useful once the cause is gone: a binding or a
subscription added to the config, a rule or a bug fixed in a newer gateway.

A resubmission raises `RefusedAgain` when the intake still refuses the message (the dead letter
stays, with the new reason), `NotReplayable` when the dead letter lacks what a replay needs
(kept by an older gateway, or its partner is gone from the config), and lets the store's
transient errors (`StoreUnavailable`, `IdempotencyConflict`) through: try again later.
"""

from __future__ import annotations

import traceback
from collections.abc import Awaitable, Callable
from typing import TypeVar

import msgspec

from actors.erp_ingress import ErpDeadLetterDetail, ErpIngress, refusal_reason
from actors.partner import PartnerIntake, PartnerPolicy, Submission
from canonical.errors import GatewayError, IdempotencyConflict, StoreUnavailable
from gateway.config import GatewayConfig
from gateway.erp import erp_ingress
from gateway.partners import IntakeCrashDetail, crash_reason
from gateway.store import DeadLetter, Store

__all__ = ["NotReplayable", "RefusedAgain", "Resubmit", "resubmitters"]

Resubmit = Callable[[DeadLetter], Awaitable[None]]
"""Take one dead letter's message through its intake again; see the module's docstring."""

# A replay is the operator's, not the partner's traffic: the partner's rate limit is not spent.
_UNLIMITED = PartnerPolicy(partner_id="", rate_per_second=1e12, burst=2**31)
_TRANSIENT = (StoreUnavailable, IdempotencyConflict)


class NotReplayable(GatewayError):
    """The dead letter cannot be replayed; the detail says why."""

    status, reason, title = 409, "not-replayable", "This dead letter cannot be replayed"


class RefusedAgain(Exception):
    """The intake refused the message again: the dead letter's new reason and detail."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


def resubmitters(cfg: GatewayConfig, store: Store) -> dict[str, Resubmit]:
    """Return the resubmission of each source kind that has one ("amqp", "intake")."""
    return {
        "amqp": _ErpResubmit(erp_ingress(cfg, store), store),
        "intake": _IntakeResubmit({p.id for p in cfg.partners}, store),
    }


class _Redelivery(msgspec.Struct, frozen=True, kw_only=True):
    """An ERP delivery rebuilt from its dead letter (`actors.erp_ingress.ErpDelivery`)."""

    queue: str
    routing_key: str
    body: bytes
    message_id: str | None
    correlation_id: str | None
    message_type: str | None
    received_at: float
    traceparent: str | None = None


class _ErpResubmit:
    def __init__(self, ingress: ErpIngress, store: Store) -> None:
        self._ingress = ingress
        self._store = store

    async def __call__(self, letter: DeadLetter) -> None:
        kept = _detail(letter, ErpDeadLetterDetail)
        delivery = _Redelivery(
            queue=kept.queue,
            routing_key=kept.routing_key,
            body=letter.payload,
            message_id=letter.message_id,
            correlation_id=kept.correlation_id,
            message_type=kept.message_type,
            received_at=kept.received_at,
            traceparent=kept.traceparent,
        )
        try:
            await self._store.accept(self._ingress.acceptance(delivery))
        except _TRANSIENT:
            raise
        except GatewayError as error:
            again = msgspec.structs.replace(kept, error=error.detail)
            raise RefusedAgain(refusal_reason(error), _json(again)) from error


class _IntakeResubmit:
    def __init__(self, partners: set[str], store: Store) -> None:
        self._partners = partners
        self._store = store
        self._intakes: dict[str, PartnerIntake] = {}

    async def __call__(self, letter: DeadLetter) -> None:
        kept = _detail(letter, IntakeCrashDetail)
        partner_id = letter.partner_id
        if partner_id is None or partner_id not in self._partners:
            raise NotReplayable(f"partner {partner_id!r} is not in the configuration")
        intake = self._intakes.get(partner_id)
        if intake is None:
            policy = msgspec.structs.replace(_UNLIMITED, partner_id=partner_id)
            intake = self._intakes[partner_id] = PartnerIntake(policy)
        submission = Submission(
            partner_id=partner_id,
            document_type=kept.document_type,
            body=letter.payload,
            idempotency_key=kept.idempotency_key,
            causation_id=kept.webhook_id,
            received_at=kept.received_at,
        )
        try:
            await self._store.accept(intake.admit(submission))
        except _TRANSIENT:
            raise
        except GatewayError as error:
            # Refused (an invalid document now, a key reused): a partner would get a 4xx.
            trace = f"{error.reason}: {error.detail}"
            raise RefusedAgain(trace, _json(msgspec.structs.replace(kept, trace=trace))) from None
        except Exception as crash:
            trace = "".join(traceback.format_exception(crash))
            raise RefusedAgain(
                crash_reason(crash), _json(msgspec.structs.replace(kept, trace=trace))
            ) from crash


D = TypeVar("D", bound=msgspec.Struct)


def _detail(letter: DeadLetter, kind: type[D]) -> D:
    try:
        return msgspec.json.decode(letter.detail, type=kind)
    except msgspec.DecodeError:
        raise NotReplayable(
            f"dead letter {letter.id} was kept without what a replay needs (an older gateway)"
        ) from None


def _json(value: msgspec.Struct) -> str:
    return msgspec.json.encode(value).decode()
