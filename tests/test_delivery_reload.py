"""A reload swaps partners' couriers: `OutboundDelivery.adopt` against real loopback receivers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from functools import partial
from pathlib import Path

import anyio
import pytest
from anyio.abc import TaskGroup
from delivery_receiver import (
    FAST_SCHEDULE,
    OK,
    Answer,
    Outbound,
    Receiver,
    answering,
    deliveries_for,
)

from actors.delivery import OutboundDelivery
from gateway.config import PartnerConfig, Secret
from gateway.config.delivery import WebhookOutbound
from gateway.outbound import build_outbound
from gateway.store import Store
from protocols.http.egress import EgressClient
from protocols.http.server import serve

pytestmark = pytest.mark.anyio


class Gateway:
    """A store, an egress pool and a task group to serve receivers in; couriers built on demand."""

    def __init__(self, store: Store, client: EgressClient, tg: TaskGroup) -> None:
        self.store, self.client, self.tg = store, client, tg

    async def url_of(self, receiver: Receiver) -> str:
        port = await self.tg.start(
            partial(serve, receiver, host="127.0.0.1", port=0, shutdown_timeout=0.2)
        )
        return f"http://localhost:{port}/hooks"

    def couriers(self, partners: Mapping[str, tuple[str, Receiver]]) -> OutboundDelivery:
        """The couriers of one config: each partner's webhook URL and the receiver's secret."""
        configs = [
            PartnerConfig(
                id=partner_id,
                name=partner_id,
                secrets=(SECRET,),
                outbound=WebhookOutbound(
                    url=url,
                    secret=receiver.secret,
                    retry_schedule_s=FAST_SCHEDULE,
                    jitter=0.0,
                    allow_networks=("127.0.0.0/8",),
                ),
            )
            for partner_id, (url, receiver) in partners.items()
        ]
        return build_outbound(configs, self.store.deliveries, self.client, idle_wait_s=0.05)


SECRET = Secret.generate()


@contextlib.asynccontextmanager
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    async with (
        Store(str(tmp_path / "gw.db")) as store,
        EgressClient() as client,
        anyio.create_task_group() as tg,
    ):
        yield Gateway(store, client, tg)
        tg.cancel_scope.cancel()


def answered_once_each(*receivers: Receiver) -> list[str]:
    """Every message id delivered by `receivers`; fails if one was called twice."""
    calls = [call.message_id for receiver in receivers for call in receiver.calls]
    assert len(calls) == len(set(calls)), "a message was attempted twice"
    return calls


async def test_a_changed_url_takes_new_deliveries_while_the_attempt_in_flight_ends_at_the_old(
    tmp_path: Path,
) -> None:
    release = anyio.Event()

    async def old_script(n: int) -> Answer:
        if n == 3:  # the attempt in flight at the swap
            await release.wait()
        return OK

    old, new = Receiver(old_script), Receiver(answering())
    async with gateway(tmp_path) as gw:
        running = gw.couriers({"acme": (await gw.url_of(old), old)})
        await gw.tg.start(running.run)
        env = Outbound(gw.store, running)
        before = await env.accept(deliveries_for("acme", ["PO-1", "PO-2"]))
        await env.until("acme", {"delivered"})
        (in_flight,) = await env.accept(deliveries_for("acme", ["PO-3"]))
        with anyio.fail_after(10):
            while len(old.calls) < 3:
                await anyio.sleep(0.01)

        running.adopt(gw.couriers({"acme": (await gw.url_of(new), new)}), {"acme"})
        after = await env.accept(deliveries_for("acme", ["PO-4", "PO-5", "PO-6"]))
        # Long enough for a replacement that did not wait to take PO-3 (still pending) again.
        await anyio.sleep(0.3)
        release.set()
        await env.until("acme", {"delivered"})

    answered_once_each(old, new)
    # PO-1 and PO-2 go side by side (the courier's concurrency): in either order.
    assert sorted(old.delivered()) == sorted([*before, in_flight])
    assert sorted(new.delivered()) == sorted(after)
    assert all(call.verified for call in new.calls)


async def test_a_partner_added_is_delivered_to_one_removed_is_not_and_the_others_run_on(
    tmp_path: Path,
) -> None:
    kept, removed, added = Receiver(answering()), Receiver(answering()), Receiver(answering())
    async with gateway(tmp_path) as gw:
        kept_url, removed_url = await gw.url_of(kept), await gw.url_of(removed)
        running = gw.couriers({"kept": (kept_url, kept), "gone": (removed_url, removed)})
        await gw.tg.start(running.run)
        env = Outbound(gw.store, running)
        kept_before = await env.accept(deliveries_for("kept", ["PO-1"]))
        gone_before = await env.accept(deliveries_for("gone", ["PO-1"]))
        await env.until("kept", {"delivered"})
        await env.until("gone", {"delivered"})

        new = gw.couriers({"kept": (kept_url, kept), "new": (await gw.url_of(added), added)})
        running.adopt(new, {"gone", "new"})
        gone_after = await env.accept(deliveries_for("gone", ["PO-2", "PO-3"]))
        added_ids = await env.accept(deliveries_for("new", ["PO-1", "PO-2"]))
        kept_after = await env.accept(deliveries_for("kept", ["PO-2"]))
        await env.until("new", {"delivered"})
        await env.until("kept", {"delivered"})
        # A courier still delivering to the removed partner would have had the time to.
        await anyio.sleep(0.3)
        gone_states = await env.states("gone")
        statistics = running.statistics()

    assert sorted(added.delivered()) == sorted(added_ids)
    assert removed.delivered() == gone_before
    assert sorted(gone_states) == ["delivered", "pending", "pending"]
    assert len(gone_after) == 2
    assert kept.delivered() == [*kept_before, *kept_after]
    assert sorted(statistics) == ["kept", "new"]
    # The kept partner's courier counts on from before the reload: it was never restarted.
    assert statistics["kept"].delivered == 2
    assert running.restarts == 0
