"""Counters of a group of actors and the statistics the gateway's metrics collector reads."""

from __future__ import annotations

import msgspec

__all__ = ["RuntimeStatistics", "Tally"]


class RuntimeStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """A group of actors (a supervisor's, or one registry's) now and since it started."""

    live: int  # actors with a running task
    passivated: int  # actors ended for idleness so far (counter)
    restarts: int  # crashes followed by a restart so far (counter)
    dead_letters: int  # messages set aside so far (counter)
    given_up: int  # services stopped past their restart budget, the rest running on (counter)
    mailbox_depth: int  # messages queued across the live actors' mailboxes


class Tally:
    """Counters of a group of actors; every count also goes to the enclosing group's tally."""

    __slots__ = ("dead_letters", "given_up", "parent", "passivated", "restarts")

    def __init__(self, parent: Tally | None = None) -> None:
        self.parent = parent
        self.restarts = 0
        self.dead_letters = 0
        self.passivated = 0
        self.given_up = 0

    def add(
        self, *, restarts: int = 0, dead_letters: int = 0, passivated: int = 0, given_up: int = 0
    ) -> None:
        tally: Tally | None = self
        while tally is not None:
            tally.restarts += restarts
            tally.dead_letters += dead_letters
            tally.passivated += passivated
            tally.given_up += given_up
            tally = tally.parent

    def statistics(self, *, live: int, mailbox_depth: int) -> RuntimeStatistics:
        return RuntimeStatistics(
            live=live,
            passivated=self.passivated,
            restarts=self.restarts,
            dead_letters=self.dead_letters,
            given_up=self.given_up,
            mailbox_depth=mailbox_depth,
        )
