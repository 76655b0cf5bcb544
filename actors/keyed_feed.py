"""Feed committed inputs to keyed actors: each key's inputs in order, the keys side by side.

The workflow feeder (PO threads) and the inventory feeder (positions) both read committed rows
and hand each to the actor its key names. An input the actor cannot take yet (its store or its
mailbox unavailable) holds back the rest of that key's inputs, which come after it; the pass is
then retried. An input the actor crashed on until the runtime dead-lettered it is skipped: the
dead letter holds it and its error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

import anyio

from actors.runtime import ActorRef, ActorUnavailable
from canonical.errors import StoreUnavailable

__all__ = ["feed_in_order"]

K = TypeVar("K", bound=Hashable)
I = TypeVar("I")  # noqa: E741
O = TypeVar("O")  # noqa: E741

log = logging.getLogger("actors.feed")


async def feed_in_order(
    inputs: Sequence[tuple[K, I]],
    actor: Callable[[K], ActorRef[I, O]],
    *,
    what: str,
    name: Callable[[I], str],
    answered: Callable[[I, O], None],
    retry_after_s: float,
) -> bool:
    """Have every input applied, each key's in order; False (after `retry_after_s`) if one
    must be retried. `what` and `name` say in the logs which actor and input; `answered` sees
    every answer."""
    if not inputs:
        return True
    by_key: dict[K, list[I]] = {}
    for key, item in inputs:
        by_key.setdefault(key, []).append(item)
    unfinished: list[K] = []

    async def feed_key(key: K, items: list[I]) -> None:
        ref = actor(key)
        for item in items:
            try:
                outcome = await ref.ask(item)
            except (ActorUnavailable, StoreUnavailable) as exc:
                # The rest of this key's inputs must wait too: they come after this one.
                log.warning("%s %s could not take %s yet: %s", what, key, name(item), exc)
                unfinished.append(key)
                return
            except Exception:
                # Crashed on it until the runtime set it aside (a dead letter with the error).
                log.exception("%s %s: %s was dead-lettered", what, key, name(item))
                continue
            answered(item, outcome)

    async with anyio.create_task_group() as tg:
        for key, items in by_key.items():
            tg.start_soon(feed_key, key, items)
    if unfinished:
        await anyio.sleep(retry_after_s)
    return not unfinished
