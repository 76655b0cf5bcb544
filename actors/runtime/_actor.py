"""The actor base class: what a concrete actor implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Generic, TypeVar

__all__ = ["Actor"]

M = TypeVar("M")
R = TypeVar("R")


class Actor(ABC, Generic[M, R]):
    """Handles messages `M` one at a time and answers each with an `R`.

    An instance lives from `started()` to `stopping()` (or to a crash); its supervisor builds
    a fresh one from the factory on each restart and on each rehydration, so state that must
    outlive the instance is loaded in `started()` and saved in `stopping()` (or in `receive`).

    Errors from `receive`: an exception of a type named in `refusals` (or the runtime's own
    `ActorUnavailable`) is the answer (re-raised in the asker; dead-lettered for a plain tell);
    the instance keeps serving. Any other exception is a crash: the instance is dropped without
    `stopping()` (its state is suspect) and replaced. An exception from `started()` or
    `stopping()` is a crash too. The runtime knows no domain: an actor names its own refusals
    (a workflow actor names the gateway's business errors), as trio names the accept errors it
    survives, and everything unnamed escalates to supervision.
    """

    #: Exceptions from `receive` that answer the message instead of crashing the actor.
    refusals: ClassVar[tuple[type[Exception], ...]] = ()

    async def started(self) -> None:
        """Called once before the first message of this instance; load state here."""

    @abstractmethod
    async def receive(self, message: M) -> R:
        """Handle one message and return the answer for the asker (ignored for a tell)."""

    async def stopping(self) -> None:
        """Called when the instance is passivated or shut down; save state here."""
