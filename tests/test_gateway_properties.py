"""Property: whatever a client sends, the gateway never answers 500 and never stores a refusal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import hypothesis.strategies as st
import orjson
import pytest
from anyio.from_thread import start_blocking_portal
from gatewaykit import DOCUMENTS, Partner, load, running, write_config
from hypothesis import HealthCheck, given, settings
from store_samples import select

from canonical import DOCUMENT_TYPES, sample_body
from gateway.localbroker import LocalRabbitMQ

pytestmark = [pytest.mark.rabbitmq]

ACME = Partner("acme")
SENDS: list[str] = orjson.loads(DOCUMENTS)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


PRINTABLE = st.characters(min_codepoint=32, max_codepoint=126)


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, bytes, dict[str, str]]:
    """A request that is sometimes right, mostly subtly wrong."""
    # Half the time a type the partner sends (the only ones that can be 202), so the share of
    # answers that can be accepted does not shrink as document types are added.
    document = draw(st.sampled_from(SENDS) | st.sampled_from([*DOCUMENT_TYPES, "nonsense"]))
    kind = draw(st.sampled_from(["sample", "mutated", "json", "bytes"]))
    if kind == "sample" and document in DOCUMENT_TYPES:
        body = sample_body(document, draw(st.integers(0, 50)))
    elif kind == "mutated" and document in DOCUMENT_TYPES:
        tree = orjson.loads(sample_body(document, 1))
        key = draw(st.sampled_from(sorted(tree)))
        tree[key] = draw(json_values)
        body = orjson.dumps(tree)
    elif kind == "json":
        body = orjson.dumps(draw(json_values))
    else:
        body = draw(st.binary(max_size=200))
    signed = draw(st.booleans())
    headers = ACME.headers(body) if signed else {}
    for name in draw(
        st.sets(
            st.sampled_from(
                [
                    "webhook-id",
                    "webhook-timestamp",
                    "webhook-signature",
                    "content-type",
                    "idempotency-key",
                ]
            ),
            max_size=2,
        )
    ):
        headers[name] = draw(st.text(PRINTABLE, max_size=40)).strip()  # h11 refuses padding
    return f"/webhooks/acme/{document}", body, headers


@pytest.fixture(scope="module")
def live_gateway(
    tmp_path_factory: pytest.TempPathFactory, rabbitmq: LocalRabbitMQ
) -> Iterator[tuple[httpx.Client, Path]]:
    """One gateway for every example, on its own event loop thread; a plain client to call it."""
    folder = tmp_path_factory.mktemp("properties")
    config = load(write_config(folder, rabbitmq.url, [ACME]))
    with (
        start_blocking_portal(backend_options={"use_uvloop": True}) as portal,
        portal.wrap_async_context_manager(running(config)) as gateway,
        httpx.Client(base_url=f"http://127.0.0.1:{gateway.http_port}", timeout=10) as http,
    ):
        yield http, folder / "gateway.db"


SEEN: set[int] = set()


@settings(
    max_examples=200,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(request=requests())
def test_random_requests_never_500_and_refusals_store_nothing(
    live_gateway: tuple[httpx.Client, Path], request: tuple[str, bytes, dict[str, str]]
) -> None:
    http, db = live_gateway
    path, body, headers = request
    before = select(db, "select count(*) from outbox")[0][0]
    response = http.post(path, content=body, headers=headers)
    after = select(db, "select count(*) from outbox")[0][0]
    SEEN.add(response.status_code)
    assert response.status_code < 500
    if response.status_code == 202 and response.headers.get("idempotent-replayed") != "true":
        assert after == before + 1
    else:
        assert after == before
    if response.status_code != 202:
        assert response.headers["content-type"] == "application/problem+json"


def test_the_random_requests_reached_every_interesting_answer() -> None:
    # Runs after the property in file order: a strategy that only ever produced 401s would
    # make the property above vacuous.
    assert {202, 401, 403, 422} <= SEEN
