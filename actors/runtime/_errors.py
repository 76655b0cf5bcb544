"""Errors of the actor runtime: what a sender, an asker or a supervisor's parent can see.

`MailboxFull`, `AskTimeout` and `ActorStopped` are `ActorUnavailable`s: an answer ("busy, try
later"), never a crash. The runtime knows no domain, so it does not say how such an answer is
shown: the caller that speaks HTTP or AMQP maps `ActorUnavailable` to its own "retry later" (503,
a requeue). An actor that lets one escape its own `receive` hands it back to its asker instead of
crashing, as it does with the errors it names in `Actor.refusals`. `Escalation` is not an
answer: it means supervision gave up.
"""

from __future__ import annotations

__all__ = ["ActorStopped", "ActorUnavailable", "AskTimeout", "Escalation", "MailboxFull"]


class ActorUnavailable(Exception):
    """The actor cannot take or answer this message now; the sender may try again later.

    `reason` is a stable, machine-readable word for logs and for the caller's own error
    mapping (a problem type, a requeue reason).
    """

    reason = "actor-unavailable"


class MailboxFull(ActorUnavailable):
    """`tell_nowait` found the actor's mailbox at its bound."""

    reason = "mailbox-full"


class AskTimeout(ActorUnavailable, TimeoutError):
    """An ask got no answer within its timeout; the message may still be handled later."""

    reason = "ask-timeout"


class ActorStopped(ActorUnavailable):
    """The actor is shut down (or gave up): it takes no message and owes no answer any more."""

    reason = "actor-stopped"


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
