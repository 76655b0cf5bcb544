"""The egress guard and client: non-public targets refused, answers taken as they come."""

from __future__ import annotations

import ipaddress
import time
from functools import partial

import anyio
import pytest
from delivery_receiver import Receiver, answering

from gateway.config import Secret
from protocols.http.egress import (
    EgressClient,
    EgressError,
    EgressRefused,
    WebhookTarget,
    guard_address,
    parse_retry_after,
    resolve_target,
)
from protocols.http.server import serve

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
    ],
)
def test_guard_refuses_addresses_that_are_not_public(address: str) -> None:
    with pytest.raises(EgressRefused):
        guard_address(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700:4700::1111"])
def test_guard_lets_public_addresses_through(address: str) -> None:
    assert guard_address(address) == ipaddress.ip_address(address)


def test_guard_lets_a_named_network_through_and_connects_to_the_ipv4_of_a_mapped_address() -> None:
    assert guard_address("::ffff:127.0.0.1", LOOPBACK) == ipaddress.ip_address("127.0.0.1")


@pytest.mark.parametrize("address", ["10.0.0.1", "169.254.169.254", "::1"])
def test_a_named_network_lets_nothing_else_through(address: str) -> None:
    with pytest.raises(EgressRefused):
        guard_address(address, LOOPBACK)


@pytest.mark.anyio
async def test_a_name_resolving_only_to_refused_addresses_is_refused() -> None:
    with pytest.raises(EgressRefused):
        await resolve_target("localhost", 80)


@pytest.mark.anyio
async def test_resolution_picks_the_address_of_the_allowed_network() -> None:
    assert await resolve_target("localhost", 80, LOOPBACK) == ipaddress.ip_address("127.0.0.1")


@pytest.mark.anyio
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:127.0.0.1]:9/hook",
    ],
)
async def test_client_refuses_a_target_that_is_not_allowed_before_connecting(url: str) -> None:
    target = WebhookTarget(url=url, secret_key=Secret.generate().key, timeout_s=5.0)
    async with EgressClient() as client:
        with pytest.raises(EgressRefused):
            await client.post_webhook(target, "msg-1", b"{}", timestamp=0)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("2", 2.0), (" 120 ", 120.0), ("soon", None), (None, None), ("-1", None)],
)
def test_retry_after_in_seconds(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=0.0) == seconds


def test_retry_after_as_an_http_date() -> None:
    # Wed, 21 Oct 2015 07:28:00 GMT
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0


async def _post(receiver: Receiver, *, head_bytes: int = 512) -> tuple[int, bytes, str]:
    async with EgressClient() as client, anyio.create_task_group() as tg:
        port = await tg.start(partial(serve, receiver, host="127.0.0.1", port=0))
        target = WebhookTarget(
            url=f"http://localhost:{port}/hook",
            secret_key=receiver.secret.key,
            timeout_s=5.0,
            allow_networks=LOOPBACK,
            response_head_bytes=head_bytes,
        )
        answer = await client.post_webhook(target, "msg-1", b'{"a": 1}', timestamp=int(time.time()))
        tg.cancel_scope.cancel()
    return answer.status, answer.head, receiver.calls[0].host


@pytest.mark.anyio
async def test_a_signed_post_verifies_with_the_reference_library() -> None:
    receiver = Receiver(answering())
    status, _, host = await _post(receiver)

    assert status == 200
    assert receiver.calls[0].verified
    assert host.startswith("localhost:")


@pytest.mark.anyio
async def test_redirects_are_answers_not_followed() -> None:
    receiver = Receiver(answering((302, {"location": "http://169.254.169.254/"}, b"")))
    status, _, _ = await _post(receiver)

    assert status == 302
    assert len(receiver.calls) == 1


@pytest.mark.anyio
async def test_only_the_first_bytes_of_the_answer_are_kept() -> None:
    receiver = Receiver(answering((500, {}, b"x" * 10_000)))
    _, head, _ = await _post(receiver, head_bytes=512)

    assert head == b"x" * 512


@pytest.mark.anyio
async def test_no_answer_within_the_timeout_is_an_egress_error() -> None:
    async def hang(n: int) -> tuple[int, dict[str, str], bytes]:
        await anyio.sleep_forever()
        raise AssertionError

    receiver = Receiver(hang)
    async with EgressClient() as client, anyio.create_task_group() as tg:
        port = await tg.start(
            partial(serve, receiver, host="127.0.0.1", port=0, shutdown_timeout=0.2)
        )
        target = WebhookTarget(
            url=f"http://127.0.0.1:{port}/hook",
            secret_key=receiver.secret.key,
            timeout_s=0.2,
            allow_networks=LOOPBACK,
        )
        with pytest.raises(EgressError, match="no answer within"):
            await client.post_webhook(target, "msg-1", b"{}", timestamp=0)
        tg.cancel_scope.cancel()
