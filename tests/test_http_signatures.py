"""Standard Webhooks signatures: interop with the reference library, rotation, tolerance, abuse."""

from __future__ import annotations

import base64
import contextlib
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks import Webhook

from canonical.errors import ConfigError, SignatureInvalid
from protocols.http.signatures import decode_whsec, sign, verify, verify_raw

NOW = 1_767_225_600  # 2026-01-01T00:00:00Z
SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
NEXT_SECRET = "whsec_" + base64.b64encode(bytes(range(100, 132))).decode()
KEY = decode_whsec(SECRET)
NEXT_KEY = decode_whsec(NEXT_SECRET)
MSG_ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
BODY = b'{"po_number":"PO-1001","lines":[{"sku":"A-1","qty":12}]}'


def headers_for(signature: str, *, timestamp: int = NOW, msg_id: str = MSG_ID) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


def reference_signature(secret: str, body: bytes, *, timestamp: int = NOW) -> str:
    """Sign the way a partner using the reference library would."""
    at = datetime.fromtimestamp(timestamp, tz=UTC)
    signature: str = Webhook(secret).sign(MSG_ID, at, body.decode())
    return signature


def test_signature_made_by_the_reference_library_verifies() -> None:
    signature = reference_signature(SECRET, BODY)

    verify([KEY], headers_for(signature), BODY, now=NOW)


def test_our_signature_verifies_with_the_reference_library() -> None:
    now = int(datetime.now(tz=UTC).timestamp())  # the reference library reads the real clock
    headers = headers_for(sign(KEY, MSG_ID, now, BODY), timestamp=now)

    assert Webhook(SECRET).verify(BODY, headers) == {
        "po_number": "PO-1001",
        "lines": [{"sku": "A-1", "qty": 12}],
    }


def test_signature_has_the_v1_form_and_matches_the_reference_byte_for_byte() -> None:
    assert sign(KEY, MSG_ID, NOW, BODY) == reference_signature(SECRET, BODY)


def test_body_that_is_not_utf8_is_signed_as_bytes() -> None:
    body = b"\xff\xfe\x00binary"

    verify([KEY], headers_for(sign(KEY, MSG_ID, NOW, body)), body, now=NOW)


@pytest.mark.parametrize("signing_secret", [SECRET, NEXT_SECRET], ids=["old-key", "new-key"])
def test_either_live_key_is_accepted_during_rotation(signing_secret: str) -> None:
    signature = reference_signature(signing_secret, BODY)

    verify([KEY, NEXT_KEY], headers_for(signature), BODY, now=NOW)


def test_any_matching_entry_among_several_is_accepted() -> None:
    valid = sign(NEXT_KEY, MSG_ID, NOW, BODY)
    header = f"v1,bm90IHRoaXMgb25l v1a,ed25519sig {valid}"

    verify([NEXT_KEY], headers_for(header), BODY, now=NOW)


def test_retired_key_is_refused() -> None:
    signature = sign(KEY, MSG_ID, NOW, BODY)

    with pytest.raises(SignatureInvalid, match="no v1 signature"):
        verify([NEXT_KEY], headers_for(signature), BODY, now=NOW)


def test_signature_over_another_body_is_refused() -> None:
    signature = sign(KEY, MSG_ID, NOW, BODY)

    with pytest.raises(SignatureInvalid, match="no v1 signature"):
        verify([KEY], headers_for(signature), BODY + b" ", now=NOW)


@pytest.mark.parametrize("offset", [-300, 0, 300], ids=["300s-old", "now", "300s-ahead"])
def test_timestamp_within_tolerance_is_accepted(offset: int) -> None:
    sent_at = NOW + offset
    signature = sign(KEY, MSG_ID, sent_at, BODY)

    verify([KEY], headers_for(signature, timestamp=sent_at), BODY, now=NOW, tolerance=300)


@pytest.mark.parametrize(
    ("offset", "detail"),
    [(-301, "too old"), (301, "too new")],
    ids=["stale", "from-the-future"],
)
def test_timestamp_outside_tolerance_is_refused(offset: int, detail: str) -> None:
    sent_at = NOW + offset
    signature = sign(KEY, MSG_ID, sent_at, BODY)

    with pytest.raises(SignatureInvalid, match=detail):
        verify([KEY], headers_for(signature, timestamp=sent_at), BODY, now=NOW, tolerance=300)


VALID = sign(KEY, MSG_ID, NOW, BODY)


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({"webhook-timestamp": str(NOW), "webhook-signature": VALID}, "missing webhook-id"),
        ({"webhook-id": MSG_ID, "webhook-signature": VALID}, "missing webhook-timestamp"),
        ({"webhook-id": MSG_ID, "webhook-timestamp": str(NOW)}, "missing webhook-signature"),
        (headers_for(VALID, msg_id=""), "missing webhook-id"),
        (headers_for(""), "missing webhook-signature"),
        ({**headers_for(VALID), "webhook-timestamp": ""}, "missing webhook-timestamp"),
        ({**headers_for(VALID), "webhook-timestamp": "yesterday"}, "malformed webhook-timestamp"),
        ({**headers_for(VALID), "webhook-timestamp": f"{NOW}.5"}, "malformed webhook-timestamp"),
        ({**headers_for(VALID), "webhook-timestamp": f"-{NOW}"}, "malformed webhook-timestamp"),
        ({**headers_for(VALID), "webhook-timestamp": f" {NOW}"}, "malformed webhook-timestamp"),
        ({**headers_for(VALID), "webhook-timestamp": "١٢٣"}, "malformed webhook-timestamp"),
        ({**headers_for(VALID), "webhook-timestamp": "9" * 5000}, "malformed webhook-timestamp"),
        (headers_for("v1"), "no v1 signature"),
        (headers_for(VALID.replace(",", "")), "no v1 signature"),
        (headers_for("v1,"), "no v1 signature"),
        (headers_for(","), "no v1 signature"),
        (headers_for("v1,!!!not-base64!!!"), "no v1 signature"),
        (headers_for("v1,@@@ v1,%%% v1"), "no v1 signature"),
        (headers_for(VALID.replace("v1,", "v2,")), "no v1 signature"),
        (headers_for(VALID.replace("v1,", "V1,")), "no v1 signature"),
        (headers_for("   "), "no v1 signature"),
        (headers_for("v1,\udcff"), "no v1 signature"),
    ],
    ids=[
        "no-id",
        "no-timestamp",
        "no-signature",
        "empty-id",
        "empty-signature",
        "empty-timestamp",
        "timestamp-word",
        "timestamp-float",
        "timestamp-negative",
        "timestamp-leading-space",
        "timestamp-arabic-digits",
        "timestamp-5000-digits",
        "entry-version-only",
        "entry-without-comma",
        "entry-empty-value",
        "entry-comma-only",
        "entry-garbage-base64",
        "entries-all-garbage",
        "entry-unknown-version",
        "entry-version-wrong-case",
        "entries-only-spaces",
        "entry-lone-surrogate",
    ],
)
def test_malformed_headers_are_refused_with_a_precise_detail(
    headers: dict[str, str], detail: str
) -> None:
    with pytest.raises(SignatureInvalid, match=detail):
        verify([KEY], headers, BODY, now=NOW)


def test_signature_entries_past_the_bound_are_not_examined() -> None:
    header = " ".join(["v1,AAAA"] * 16 + [VALID])

    with pytest.raises(SignatureInvalid, match="no v1 signature"):
        verify([KEY], headers_for(header), BODY, now=NOW)


def test_verify_raw_returns_the_checked_timestamp() -> None:
    timestamp = verify_raw([KEY], MSG_ID.encode(), str(NOW).encode(), VALID.encode(), BODY, now=NOW)

    assert timestamp == NOW


header_value = st.one_of(st.none(), st.text(max_size=200), st.just(VALID), st.just(str(NOW)))


@given(
    msg_id=header_value,
    timestamp=header_value,
    signature=st.one_of(
        header_value,
        st.lists(st.sampled_from(["v1", ",", " ", "v1a", "=", VALID[:10], "/+"]), max_size=30).map(
            "".join
        ),
    ),
    body=st.binary(max_size=200),
)
def test_random_header_values_raise_nothing_but_signature_invalid(
    msg_id: str | None, timestamp: str | None, signature: str | None, body: bytes
) -> None:
    headers = {
        name: value
        for name, value in [
            ("webhook-id", msg_id),
            ("webhook-timestamp", timestamp),
            ("webhook-signature", signature),
        ]
        if value is not None
    }
    with contextlib.suppress(SignatureInvalid):
        verify([KEY, NEXT_KEY], headers, body, now=NOW)


@given(
    msg_id=st.one_of(st.none(), st.binary(max_size=100)),
    timestamp=st.one_of(st.none(), st.binary(max_size=20), st.just(str(NOW).encode())),
    signature=st.one_of(st.none(), st.binary(max_size=300)),
)
def test_random_raw_header_bytes_raise_nothing_but_signature_invalid(
    msg_id: bytes | None, timestamp: bytes | None, signature: bytes | None
) -> None:
    with contextlib.suppress(SignatureInvalid):
        verify_raw([KEY], msg_id, timestamp, signature, BODY, now=NOW)


@pytest.mark.parametrize(
    "secret",
    [SECRET, SECRET.removeprefix("whsec_"), SECRET.rstrip("=")],
    ids=["prefixed", "bare-base64", "unpadded"],
)
def test_whsec_secret_decodes_to_the_key_the_reference_library_uses(secret: str) -> None:
    signature = reference_signature(SECRET, BODY)

    verify([decode_whsec(secret)], headers_for(signature), BODY, now=NOW)


@pytest.mark.parametrize(
    ("secret", "detail"),
    [
        ("whsec_not*base64", "not valid base64"),
        ("whsec_élan", "not valid base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "5 bytes; at least 24"),
        ("whsec_", "0 bytes"),
    ],
    ids=["bad-alphabet", "non-ascii", "too-short", "empty"],
)
def test_unusable_secret_is_a_config_error(secret: str, detail: str) -> None:
    with pytest.raises(ConfigError, match=detail):
        decode_whsec(secret)


def test_config_error_for_a_secret_does_not_quote_it() -> None:
    with pytest.raises(ConfigError) as caught:
        decode_whsec("whsec_Sup3rSecretValue*")

    assert "Sup3rSecretValue" not in str(caught.value)
