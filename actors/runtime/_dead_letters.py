"""Where messages no actor could handle are set aside, with the error that stopped them."""

from __future__ import annotations

import traceback
from typing import Protocol

import msgspec

__all__ = ["DeadLetter", "DeadLetterSink", "InMemoryDeadLetters"]


class DeadLetterSink(Protocol):
    """Keeps a message the runtime gave up on, for inspection and replay (the store wires one)."""

    async def dead_letter(self, *, actor: str, message: object, error: BaseException) -> None: ...


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """One message set aside: which actor, the message, and the error as text."""

    actor: str
    message: object
    error_type: str
    error_text: str
    traceback: str

    @classmethod
    def of(cls, *, actor: str, message: object, error: BaseException) -> DeadLetter:
        return cls(
            actor=actor,
            message=message,
            error_type=f"{type(error).__module__}.{type(error).__qualname__}",
            error_text=str(error),
            traceback="".join(traceback.format_exception(error)),
        )


class InMemoryDeadLetters:
    """A `DeadLetterSink` that keeps its letters in a list (tests, and a default for demos)."""

    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []

    async def dead_letter(self, *, actor: str, message: object, error: BaseException) -> None:
        self.letters.append(DeadLetter.of(actor=actor, message=message, error=error))
