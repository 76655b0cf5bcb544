"""Where keyed actors keep their state between passivation and rehydration."""

from __future__ import annotations

from typing import Protocol

__all__ = ["InMemoryStateStore", "StateStore"]


class StateStore(Protocol):
    """Saved actor state by key, as bytes the actor encodes itself (the store wires SQLite)."""

    async def load(self, key: str) -> bytes | None: ...

    async def save(self, key: str, state: bytes) -> None: ...


class InMemoryStateStore:
    """A `StateStore` in a dict (tests)."""

    def __init__(self) -> None:
        self.states: dict[str, bytes] = {}

    async def load(self, key: str) -> bytes | None:
        return self.states.get(key)

    async def save(self, key: str, state: bytes) -> None:
        self.states[key] = state
