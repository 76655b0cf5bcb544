"""Our one-pass publish encoding reads back, through pamqp, as the frames we meant."""

from __future__ import annotations

import datetime as dt

import pamqp.frame
import pytest
from pamqp import commands, header
from pamqp.body import ContentBody

from protocols.amqp.frames import encode_publish

FIELDS = {
    "exchange": "gateway.events",
    "routing_key": "purchase_order.acme",
    "message_id": "01a20ae6-2ca4-71f6-8ce6-d9a6647c76af",
    "correlation_id": "corr-7",
    "message_type": "purchase_order",
    "timestamp": 1795_000_000,
    "app_id": "partner-gateway",
    "headers": {"partner_id": "acme", "schema_version": 1, "causation_id": "msg_1"},
}


def decode_all(raw: bytes) -> list[tuple[int, object]]:
    frames = []
    while raw:
        consumed, channel, frame = pamqp.frame.unmarshal(raw)
        frames.append((channel, frame))
        raw = raw[consumed:]
    return frames


@pytest.mark.parametrize(
    ("body_size", "frame_max", "body_frames"),
    [
        (650, 131072, 1),
        (0, 131072, 0),
        (10_000, 4096, 3),  # split into frame_max - 8 byte chunks
    ],
)
def test_publish_frames_decode_to_the_intended_method_header_and_body(
    body_size: int, frame_max: int, body_frames: int
) -> None:
    body = bytes(range(256)) * (body_size // 256) + b"x" * (body_size % 256)
    raw = encode_publish(channel=3, body=body, frame_max=frame_max, **FIELDS)  # type: ignore[arg-type]

    frames = decode_all(raw)

    assert {channel for channel, _ in frames} == {3}
    method, content = frames[0][1], frames[1][1]
    assert isinstance(method, commands.Basic.Publish)
    assert (method.exchange, method.routing_key, method.mandatory, method.immediate) == (
        "gateway.events",
        "purchase_order.acme",
        True,
        False,
    )
    assert isinstance(content, header.ContentHeader)
    assert content.body_size == body_size
    props = content.properties
    assert props.content_type == "application/json"
    assert props.delivery_mode == 2
    assert props.message_id == FIELDS["message_id"]
    assert props.correlation_id == "corr-7"
    assert props.message_type == "purchase_order"
    assert props.app_id == "partner-gateway"
    assert props.timestamp == dt.datetime.fromtimestamp(1795_000_000, dt.UTC)
    assert props.headers == FIELDS["headers"]
    chunks = [frame for _, frame in frames[2:]]
    assert len(chunks) == body_frames
    assert all(isinstance(chunk, ContentBody) for chunk in chunks)
    assert b"".join(chunk.value for chunk in chunks) == body  # type: ignore[attr-defined]
    assert all(len(chunk.value) <= frame_max - 8 for chunk in chunks)  # type: ignore[attr-defined]


def test_a_routing_key_over_255_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match="short string"):
        encode_publish(
            channel=1, body=b"{}", frame_max=131072, **{**FIELDS, "routing_key": "k" * 256}
        )  # type: ignore[arg-type]


def test_headers_too_large_for_one_frame_are_refused() -> None:
    # A content header cannot span frames: the broker would close the connection on it.
    headers = {**FIELDS["headers"], "idempotency_key": "k" * 5000}  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="exceeds the frame size of 4096"):
        encode_publish(channel=1, body=b"{}", frame_max=4096, **{**FIELDS, "headers": headers})  # type: ignore[arg-type]
