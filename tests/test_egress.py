"""The egress guard and client: non-public targets refused, answers taken as they come."""

from __future__ import annotations

import ipaddress
import time
from functools import partial

import anyio
import pytest
from delivery_receiver import Receiver, answering
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.config import Secret
from protocols.http.contract import IngressPolicy
from protocols.http.egress import (
    EgressClient,
    EgressError,
    EgressRefused,
    WebhookTarget,
    guard_address,
    parse_retry_after,
    resolve_target,
)
from protocols.http.pull import PullPolicy
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
        # 6to4: the IPv4 address in bits 16-48 is where the packets go.
        "2002:a9fe:a9fe::",
        "2002:7f00:1::1",
        "2002:a00:1::1",
        # Teredo (server 65.54.227.120, client 192.0.2.45) and NAT64 (64:ff9b::/96).
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        "64:ff9b::a9fe:a9fe",
    ],
)
def test_guard_refuses_addresses_that_are_not_public(address: str) -> None:
    with pytest.raises(EgressRefused):
        guard_address(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700:4700::1111", "2002:808:808::1"])
def test_guard_lets_public_addresses_through(address: str) -> None:
    assert guard_address(address) == ipaddress.ip_address(address)


def test_guard_lets_a_named_network_through_and_connects_to_the_ipv4_of_a_mapped_address() -> None:
    assert guard_address("::ffff:127.0.0.1", LOOPBACK) == ipaddress.ip_address("127.0.0.1")


@pytest.mark.parametrize("address", ["10.0.0.1", "169.254.169.254", "::1"])
def test_a_named_network_lets_nothing_else_through(address: str) -> None:
    with pytest.raises(EgressRefused):
        guard_address(address, LOOPBACK)


@pytest.mark.parametrize("address", ["2002:a9fe:a9fe::", "64:ff9b::a9fe:a9fe"])
def test_an_allowed_ipv6_network_does_not_let_a_refused_ipv4_inside_it_through(
    address: str,
) -> None:
    allow = (ipaddress.ip_network("2002::/16"), ipaddress.ip_network("64:ff9b::/96"))
    with pytest.raises(EgressRefused, match=r"carries 169\.254\.169\.254"):
        guard_address(address, allow)


def test_an_allowed_nat64_network_reaches_the_public_ipv4_inside_it() -> None:
    allow = (ipaddress.ip_network("64:ff9b::/96"),)
    assert guard_address("64:ff9b::808:808", allow) == ipaddress.ip_address("64:ff9b::808:808")


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
        "http://[2002:a9fe:a9fe::]/latest/meta-data",
    ],
)
async def test_client_refuses_a_target_that_is_not_allowed_before_connecting(url: str) -> None:
    target = WebhookTarget(url=url, secret_key=Secret.generate().key, timeout_s=5.0)
    async with EgressClient() as client:
        with pytest.raises(EgressRefused):
            await client.post_webhook(target, "msg-1", b"{}", timestamp=0)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("2", 2.0),
        (" 120 ", 120.0),
        ("soon", None),
        (None, None),
        ("-1", None),
        ("1.5", None),
        # Digits to str.isdigit, not to float(): "²" crashed every attempt of its courier.
        ("²", None),
        ("①", None),
        ("١٢", None),  # Arabic-Indic digits: delta-seconds are ASCII digits only
    ],
)
def test_retry_after_in_seconds(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=0.0) == seconds


@pytest.mark.parametrize(
    "header",
    ["9" * 400, "99999999999999", "Fri, 31 Dec 9999 23:59:59 GMT"],
)
def test_a_retry_after_beyond_a_year_reads_as_a_year(header: str) -> None:
    assert parse_retry_after(header, now=1.7e9) == 365 * 24 * 3600.0


@pytest.mark.parametrize(
    "header",
    [
        "Mon, 01 Jan 99999999999 00:00:00 GMT",  # OverflowError inside the date parser
        "Wed, 21 Oct 2015 07:28:00 +9999999999999",
        "Wed, 32 Oct 2015 07:28:00 GMT",
    ],
)
def test_a_date_no_calendar_holds_is_no_retry_after(header: str) -> None:
    assert parse_retry_after(header, now=1.7e9) is None


@settings(derandomize=True, max_examples=500, deadline=None)
@given(st.one_of(st.text(), st.from_regex(r"\A[ \d]{1,40}\Z"), st.datetimes().map(str)))
def test_any_retry_after_is_none_or_a_bounded_wait(header: str) -> None:
    seconds = parse_retry_after(header, now=1.7e9)
    assert seconds is None or 0.0 <= seconds <= 365 * 24 * 3600.0


def test_retry_after_as_an_http_date() -> None:
    # Wed, 21 Oct 2015 07:28:00 GMT
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0


def test_a_retry_after_date_in_the_past_is_no_wait() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1.7e9) == 0.0


def test_structs_holding_secrets_keep_them_out_of_repr() -> None:
    secret = Secret.generate()
    shown = [
        repr(WebhookTarget(url="https://a.example/", secret_key=secret.key, timeout_s=1.0)),
        repr(IngressPolicy(keys=(secret.key,), max_body_bytes=1, allowed_documents=frozenset())),
        str(PullPolicy(token=secret.reveal().encode(), max_batch=1)),
    ]
    for text in shown:
        assert repr(secret.key) not in text
        assert secret.reveal() not in text
        assert secret.reveal().removeprefix("whsec_") not in text
        assert "<redacted>" in text


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
