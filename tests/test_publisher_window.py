"""The publisher's confirm bookkeeping, against a stand-in channel the test answers by hand."""

from __future__ import annotations

import asyncio
from typing import Any

import aiormq
import pytest
from amqp_support import outbox_rows

from protocols.amqp import BrokerConnectionLost, ConfirmedPublisher

pytestmark = pytest.mark.anyio


class StandInChannel:
    """The parts of aiormq's channel the publisher uses; `answer` settles each delivery tag."""

    number = 1
    max_content_size = 131072 - 8
    CONTENT_FRAME_SIZE = 8
    is_closed = False

    def __init__(self, answer: dict[int, BaseException | None]) -> None:
        self.answer = answer
        self.lock = asyncio.Lock()
        self.delivery_tag = 0
        self.confirmations: dict[int, asyncio.Future[Any]] = {}
        self.message_id_delivery_tag: dict[str, int] = {}
        self.write_queue = self

    def create_future(self) -> asyncio.Future[Any]:
        return asyncio.get_running_loop().create_future()

    async def put(self, frame: object) -> None:
        # The broker's answers arrive after the frames went out, in delivery-tag order.
        loop = asyncio.get_running_loop()
        for tag, error in self.answer.items():
            future = self.confirmations[tag]
            if error is None:
                loop.call_soon(future.set_result, None)
            else:
                loop.call_soon(future.set_exception, error)


class StandInConnection:
    is_closed = False

    async def close(self, exc: object = None) -> None:
        self.is_closed = True


async def test_a_confirm_after_a_lost_publish_keeps_its_answer() -> None:
    # The connection fails the first publish, but the broker had confirmed the second: it is
    # reported confirmed (not lost, which would publish it again), the third lost.
    rows = outbox_rows(3)
    channel = StandInChannel({1: aiormq.ChannelInvalidStateError("closed"), 2: None})
    publisher = ConfirmedPublisher(
        StandInConnection(),  # type: ignore[arg-type]
        channel,  # type: ignore[arg-type]
        address="broker",
        exchange="gateway.events",
        window=8,
        confirm_timeout=0.5,
        app_id="test",
    )

    with pytest.raises(BrokerConnectionLost) as lost:
        await publisher.publish_batch(rows)

    assert [d.outcome for d in lost.value.deliveries] == ["lost", "confirmed", "lost"]
    assert channel.message_id_delivery_tag == {}  # the window's entries are dropped
