"""Errors of the actor runtime: what a sender, an asker or a supervisor's parent can see.

`MailboxFull`, `AskTimeout` and `ActorStopped` are `GatewayError`s: they reach an HTTP handler or
an AMQP consumer as an answer ("busy, try later"), so the one place that maps errors to problem
documents handles them like any other, and an actor that lets one escape its own `receive` hands
it back to its asker instead of crashing. `Escalation` is not: it means supervision gave up.
"""

from __future__ import annotations

from canonical.errors import GatewayError

__all__ = ["ActorStopped", "AskTimeout", "Escalation", "MailboxFull"]


class MailboxFull(GatewayError):
    """`tell_nowait` found the actor's mailbox at its bound."""

    status, reason, title = 503, "mailbox-full", "Actor mailbox full"


class AskTimeout(GatewayError, TimeoutError):
    """An ask got no answer within its timeout; the message may still be handled later."""

    status, reason, title = 503, "ask-timeout", "Actor did not answer in time"


class ActorStopped(GatewayError):
    """The actor is shut down (or gave up): it takes no message and owes no answer any more."""

    status, reason, title = 503, "actor-stopped", "Actor stopped"


class Escalation(Exception):
    """Supervision of a child cannot go on; its supervisor gives up and raises this.

    Raised into the supervisor's parent task group when a child crashes more often than its
    restart budget allows, or when a message cannot even be dead-lettered: the next level up
    (in the end the composition root) learns that restarting this actor does not help.
    """

    def __init__(self, actor: str, error: BaseException, reason: str) -> None:
        super().__init__(f"actor {actor!r} {reason}; last error: {type(error).__name__}: {error}")
        self.actor = actor
        self.error = error
