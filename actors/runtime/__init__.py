"""The actor runtime: bounded mailboxes, references, one-for-one supervision, keyed registries.

An actor is a bounded mailbox plus one task in its supervisor's task group; a service (a
courier, a consumer, a relay) is a supervised loop with no mailbox. `tell` waits for
mailbox space, so backpressure reaches whoever sends; `ask` is a tell with a one-shot reply
and a timeout. See `Supervisor` for restarts, poison messages, escalation and shutdown, and
`Registry` for keyed actors and passivation.
"""

from actors.runtime._actor import Actor
from actors.runtime._budget import Backoff
from actors.runtime._config import RestartPolicy, RuntimeConfig
from actors.runtime._dead_letters import DeadLetter, DeadLetterSink, InMemoryDeadLetters
from actors.runtime._errors import (
    ActorStopped,
    ActorUnavailable,
    AskTimeout,
    Escalation,
    MailboxFull,
)
from actors.runtime._mailbox import MailboxStatistics
from actors.runtime._ref import ActorRef
from actors.runtime._registry import Registry
from actors.runtime._service import Service
from actors.runtime._state import InMemoryStateStore, StateStore
from actors.runtime._supervisor import Supervisor
from actors.runtime._tally import RuntimeStatistics

__all__ = [
    "Actor",
    "ActorRef",
    "ActorStopped",
    "ActorUnavailable",
    "AskTimeout",
    "Backoff",
    "DeadLetter",
    "DeadLetterSink",
    "Escalation",
    "InMemoryDeadLetters",
    "InMemoryStateStore",
    "MailboxFull",
    "MailboxStatistics",
    "Registry",
    "RestartPolicy",
    "RuntimeConfig",
    "RuntimeStatistics",
    "Service",
    "StateStore",
    "Supervisor",
]
