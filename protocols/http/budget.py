"""Bytes in flight: how much request body the ingress holds at once, per partner and overall.

A request takes room for its body before the body is read and gives it back once it is
answered; everything the request makes from the body in between (the decoded document, the
envelope, its rows on their way to the store's writer process) lives inside that window, so
the memory the ingress can hold for requests is a multiple of the budget, not of the traffic.
The room taken is the declared Content-Length, or the partner's body limit when the body comes
chunked without one (its size is not known until it has been read).

Each partner has a budget of its own inside the overall one, so a partner flooding large
bodies waits for its own room and leaves the rest to the others. A request waits at most
`wait_s` for room, first come first served, then is refused with 503 and Retry-After: a flood
waits in a bounded queue (the server's request limit, for a bounded time), never unboundedly.

Cost, on every request: `room_for`, `take_nowait` (a dict lookup, four comparisons, two
subtractions, no await) and `give`: 0.86 us together on the development machine, against
~116 us of CPU a webhook takes. Only a request that finds no room awaits (`take`).
"""

from __future__ import annotations

import asyncio
from collections import deque

import anyio

from canonical.errors import GatewayError

__all__ = [
    "DEFAULT_PARTNER_BYTES",
    "DEFAULT_TOTAL_BYTES",
    "DEFAULT_WAIT_S",
    "BodyBudget",
    "ByteBudget",
    "Overloaded",
]

_MIB = 1024 * 1024
#: Request bodies held at once, all partners; each byte costs a few more while in flight.
DEFAULT_TOTAL_BYTES = 32 * _MIB
#: The same for one partner: a quarter of the whole, so one partner cannot take it all.
DEFAULT_PARTNER_BYTES = 8 * _MIB
#: How long a request waits for room before it is refused (503, Retry-After).
DEFAULT_WAIT_S = 5.0


class Overloaded(GatewayError):
    """No room among the bytes in flight within the wait: come back later."""

    status, reason, title = 503, "overloaded", "Too many request bytes in flight"

    def __init__(self, detail: str, *, retry_after: float) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class ByteBudget:
    """A semaphore weighted by bytes, first come first served.

    A waiter at the head that needs more than is free holds back those behind it, however
    small: large bodies are never starved by a stream of small ones.
    """

    __slots__ = ("_free", "_waiters", "capacity")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("a byte budget needs a capacity of at least 1")
        self.capacity = capacity
        self._free = capacity
        # A bare future per waiter, as in the store's group commit: anyio's Event looks up
        # the backend on every instance.
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    @property
    def taken(self) -> int:
        """Bytes taken and not yet given back."""
        return self.capacity - self._free

    @property
    def waiting(self) -> int:
        """Takers waiting for room."""
        return len(self._waiters)

    def take_nowait(self, size: int) -> bool:
        """Take `size` bytes if they are free and nobody waits before us; tell whether taken."""
        if size <= self._free and not self._waiters:
            self._free -= size
            return True
        return False

    async def take(self, size: int) -> None:
        """Take `size` bytes (at most `capacity`), waiting behind earlier takers for room.

        Cancellation-safe: a taker cancelled while waiting takes nothing, and one cancelled
        just as its room was granted gives it back.
        """
        if size > self.capacity:
            raise ValueError(f"cannot take {size} bytes of a budget of {self.capacity}")
        if self.take_nowait(size):
            return
        waiter = (size, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            await waiter[1]
        except BaseException:
            if waiter[1].cancelled():
                self._forget(waiter)
            else:
                self.give(size)  # granted as the cancellation came: not ours to keep
            raise

    def give(self, size: int) -> None:
        """Give back `size` bytes taken before, and let waiters in while they fit."""
        self._free += size
        if self._waiters:
            self._grant()

    def _forget(self, waiter: tuple[int, asyncio.Future[None]]) -> None:
        try:
            self._waiters.remove(waiter)
        except ValueError:
            return
        # It may have held back smaller waiters behind it.
        self._grant()

    def _grant(self) -> None:
        waiters = self._waiters
        while waiters:
            size, future = waiters[0]
            if future.done():  # cancelled, and not yet forgotten
                waiters.popleft()
                continue
            if size > self._free:
                return
            waiters.popleft()
            self._free -= size
            future.set_result(None)


class BodyBudget:
    """The ingress's bytes in flight: one budget overall and one per partner inside it."""

    def __init__(
        self,
        *,
        total: int = DEFAULT_TOTAL_BYTES,
        per_partner: int = DEFAULT_PARTNER_BYTES,
        wait_s: float = DEFAULT_WAIT_S,
    ) -> None:
        if per_partner > total:
            raise ValueError("a partner's budget cannot be larger than the overall one")
        self.wait_s = wait_s
        self.per_partner = per_partner
        self._total = ByteBudget(total)
        self._partners: dict[str, ByteBudget] = {}

    @property
    def taken(self) -> int:
        """Body bytes held by requests in flight, all partners."""
        return self._total.taken

    @property
    def waiting(self) -> int:
        """Requests waiting for room, all partners (each counted once per budget it waits on)."""
        return self._total.waiting + sum(b.waiting for b in self._partners.values())

    def room_for(self, size: int) -> int:
        """The bytes a request of `size` takes: no more than one partner's whole budget."""
        return size if size < self.per_partner else self.per_partner

    def take_nowait(self, partner_id: str, size: int) -> bool:
        """Take `size` bytes (from `room_for`) if there is room now; tell whether taken.

        The uncontended case, without an await: call `take` when this says no.
        """
        partner = self._partners.get(partner_id)
        if partner is None:
            partner = self._partners[partner_id] = ByteBudget(self.per_partner)
        total = self._total
        # Both budgets' fields read here, in one call: this runs on every request.
        if (
            size <= partner._free
            and size <= total._free
            and not partner._waiters
            and not total._waiters
        ):
            partner._free -= size
            total._free -= size
            return True
        return False

    async def take(self, partner_id: str, size: int) -> None:
        """Take `size` bytes (from `room_for`), waiting for room first come first served.

        Raises `Overloaded` (503, Retry-After) when there is none within `wait_s`.
        """
        partner = self._partners.get(partner_id)
        if partner is None:
            partner = self._partners[partner_id] = ByteBudget(self.per_partner)
        taken_partner = False
        try:
            with anyio.move_on_after(self.wait_s):
                await partner.take(size)
                taken_partner = True
                await self._total.take(size)
                return
        except BaseException:
            if taken_partner:
                partner.give(size)
            raise
        if taken_partner:
            partner.give(size)
        whose = "all partners'" if taken_partner else "this partner's"
        raise Overloaded(
            f"{whose} request bodies in flight leave no room for {size} more bytes "
            f"within {self.wait_s:g} s",
            retry_after=self.wait_s,
        )

    def give(self, partner_id: str, size: int) -> None:
        """Give back what `take` or `take_nowait` took for one of `partner_id`'s requests."""
        partner, total = self._partners[partner_id], self._total
        partner._free += size
        total._free += size
        if partner._waiters:
            partner._grant()
        if total._waiters:
            total._grant()
