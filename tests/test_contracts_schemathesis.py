"""Schemathesis against a running gateway's generated OpenAPI: no 5xx, every answer as documented.

The gateway runs as `gateway run CONFIG` (a child process, on the session's real RabbitMQ node,
so /readyz is ready); the contracts are fetched from its admin listener's `/openapi.json`, as
a client would. Each listener's operations are fed cases Hypothesis generates from that document
(derandomized, a bounded number per test), and each answer is checked: not a server error, a
documented status, content type, headers and body schema. Webhook requests are signed by a hook
that serializes the generated body and signs those exact bytes, as a partner would.
"""

from __future__ import annotations

import functools
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from customer_api_support import ACME_KEY, customers_toml
from gatewaykit import GatewayProcess, Partner, write_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import CheckFunction

from canonical.documents import DOCUMENT_TYPES
from gateway.admin import OPERATIONS as ADMIN_OPERATIONS
from gateway.config import Secret
from gateway.localbroker import LocalRabbitMQ

# Cases per test: enough to reach every operation several times, bounded for a shared CI box.
EXAMPLES = 150
# Cases per webhook operation (one per document type).
EXAMPLES_EACH = 8
STARTUP_S = 60.0

ADMIN_TOKEN = Secret.generate().reveal()
PULL_TOKEN = Secret.generate().reveal()
PARTNER = Partner("acme")


def checks() -> list[CheckFunction]:
    c = schemathesis.checks
    return [
        c.not_a_server_error,
        c.status_code_conformance,
        c.content_type_conformance,
        c.response_headers_conformance,
        c.response_schema_conformance,
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RunningGateway:
    def __init__(self, http_port: int, admin_port: int, api_port: int) -> None:
        self.http = f"http://127.0.0.1:{http_port}"
        self.admin = f"http://127.0.0.1:{admin_port}"
        self.api = f"http://127.0.0.1:{api_port}"

    def openapi(self, listener: str) -> dict[str, Any]:
        answer = httpx.get(
            f"{self.admin}/openapi.json",
            params={"listener": listener},
            headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=10,
        )
        answer.raise_for_status()
        document: dict[str, Any] = answer.json()
        return document


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, rabbitmq: LocalRabbitMQ
) -> Iterator[RunningGateway]:
    folder = tmp_path_factory.mktemp("contracts")
    http_port, admin_port, api_port = free_port(), free_port(), free_port()
    documents = json.dumps(sorted(DOCUMENT_TYPES))
    config = write_config(
        folder,
        rabbitmq.url,
        [PARTNER],
        http_port=http_port,
        admin_port=admin_port,
        documents=documents,
        partner_extra=(
            'receives = ["purchase_order"]\n'
            f'[partners.pull]\ntoken = "{PULL_TOKEN}"\nmax_batch = 50\n'
        ),
        # The customer API on its own listener, acme's and globex's accounts.
        extra=customers_toml().replace("port = 0\n", f"port = {api_port}\n", 1),
    )
    # write_config's admin table has no token: the contract routes are behind it.
    text = config.read_text().replace(
        f"[admin]\nport = {admin_port}\n",
        f'[admin]\nport = {admin_port}\ntoken = "{ADMIN_TOKEN}"\n',
    )
    config.write_text(text)
    process = GatewayProcess(config, folder / "gateway.log")
    process.start()
    running = RunningGateway(http_port, admin_port, api_port)
    deadline = time.monotonic() + STARTUP_S
    while True:
        try:
            httpx.get(f"{running.admin}/healthz", timeout=2).raise_for_status()
            break
        except httpx.HTTPError:
            assert process.process is not None
            if process.process.poll() is not None or time.monotonic() > deadline:
                log = (folder / "gateway.log").read_text()[-3000:]
                pytest.fail(f"the gateway did not start:\n{log}")
            time.sleep(0.1)
    try:
        yield running
    finally:
        process.terminate()


Seen = dict[str, set[int]]


def run_cases(
    strategy: st.SearchStrategy[Any], base_url: str, send: Any = None, examples: int = EXAMPLES
) -> Seen:
    """Run the cases; return the statuses each operation answered (a test can fail only if
    the cases reached what it meant to test, so the callers assert on these)."""
    session = requests.Session()
    seen: Seen = {}

    @settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: schemathesis.Case) -> None:
        if send is None:
            response = case.call(base_url=base_url, session=session, timeout=10)
        else:
            response = send(case, session)
        seen.setdefault(case.operation.label, set()).add(response.status_code)
        case.validate_response(response, checks=checks())

    run()
    return seen


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_admin_listener_answers_as_its_openapi_says(
    gateway: RunningGateway, mode: GenerationMode
) -> None:
    schema = schemathesis.openapi.from_dict(gateway.openapi("admin"))
    strategy = schema.as_strategy(
        generation_mode=mode, headers={"authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    seen = run_cases(strategy, gateway.admin)
    if mode == GenerationMode.POSITIVE:
        # Negative cases exist only for operations with something to break.
        assert set(seen) == {f"{op.method} {op.path}" for op in ADMIN_OPERATIONS}
        reads = ("/healthz", "/readyz", "/metrics", "/dead-letters", "/openapi.json")
        assert all(200 in seen[f"GET {path}"] for path in reads), seen
        # The documented `{}` body passes the guard's JSON rule: the route itself answers.
        assert 415 not in seen["POST /endpoints/{partner}/enable"], seen


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_pull_api_answers_as_its_openapi_says(
    gateway: RunningGateway, mode: GenerationMode
) -> None:
    schema = schemathesis.openapi.from_dict(gateway.openapi("partner"))
    pull = schema.include(path_regex="^/partners/")
    strategy = st.one_of(
        pull.as_strategy(
            generation_mode=mode,
            headers={"authorization": f"Bearer {PULL_TOKEN}"},
            path_parameters={"partner": PARTNER.id},
        ),
        pull.as_strategy(generation_mode=mode),
    )
    seen = run_cases(strategy, gateway.http)
    if mode == GenerationMode.POSITIVE:
        assert 200 in seen["GET /partners/{partner}/messages"], seen
        assert 200 in seen["POST /partners/{partner}/messages/ack"], seen
    assert 401 in seen["GET /partners/{partner}/messages"], seen


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_customer_api_answers_as_its_openapi_says(
    gateway: RunningGateway, mode: GenerationMode
) -> None:
    schema = schemathesis.openapi.from_dict(gateway.openapi("api"))
    strategy = st.one_of(
        schema.as_strategy(generation_mode=mode, headers={"x-api-key": ACME_KEY}),
        schema.as_strategy(generation_mode=mode),  # no key, or one schemathesis made up
    )
    seen = run_cases(strategy, gateway.api, send=functools.partial(json_send, gateway.api))
    assert set(seen) == {
        "GET /api/v1/availability",
        "POST /api/v1/orders",
        "GET /api/v1/orders/{order_id}",
    }, seen
    assert 401 in seen["GET /api/v1/availability"], seen
    if mode == GenerationMode.POSITIVE:
        # The account's key reaches the routes: an answer from the read model, an order taken.
        assert 200 in seen["GET /api/v1/availability"], seen
        assert seen["POST /api/v1/orders"] & {202, 422}, seen


def json_send(
    base_url: str, case: schemathesis.Case[Any], session: requests.Session
) -> requests.Response:
    """Send the case with its JSON body's integers as integers (see integral_floats_as_ints)."""
    kwargs = case.as_transport_kwargs(base_url=base_url)
    if "json" in kwargs:
        kwargs["json"] = integral_floats_as_ints(kwargs["json"])
    return session.request(timeout=10, **kwargs)


def integral_floats_as_ints(value: Any) -> Any:
    """JSON Schema's "integer" admits 1.0, which the gateway's decoder refuses for an int field
    (as it should: 1.0 is how a float leaks in). Partners' JSON libraries write integers as
    integers; so does this hook, or positive cases would fail on a JSON spelling."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: integral_floats_as_ints(item) for key, item in value.items()}
    if isinstance(value, list):
        return [integral_floats_as_ints(item) for item in value]
    return value


def signed_send(
    base_url: str, case: schemathesis.Case, session: requests.Session
) -> requests.Response:
    """Send the case as a partner would: the body serialized once, those bytes signed.

    A negative case may carry raw bytes (`data`) instead of JSON: they are signed as they are,
    so the answer is about the body, not a signature the hook broke.
    """
    kwargs = case.as_transport_kwargs(base_url=base_url)
    raw = kwargs.pop("data", None)
    if "json" in kwargs:
        body = json.dumps(integral_floats_as_ints(kwargs.pop("json"))).encode()
    elif isinstance(raw, str):
        body = raw.encode()
    else:
        body = bytes(raw or b"")
    headers = dict(kwargs.pop("headers", {}) or {})
    headers.update(PARTNER.headers(body))
    headers["content-type"] = "application/json"
    return session.request(data=body, headers=headers, timeout=10, **kwargs)


# Fifteen operations with deep document schemas: generating their cases takes a while.
@pytest.mark.timeout(360)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_webhook_ingress_answers_as_its_openapi_says(
    gateway: RunningGateway, mode: GenerationMode
) -> None:
    schema = schemathesis.openapi.from_dict(gateway.openapi("partner"))
    webhooks = schema.include(path_regex="^/webhooks/")
    send = functools.partial(signed_send, gateway.http)
    seen: Seen = {}
    # Operation by operation: one strategy over all fifteen could leave one out.
    for result in webhooks.get_all_operations():
        operation = result.ok()
        strategy = operation.as_strategy(
            generation_mode=mode, path_parameters={"partner": PARTNER.id}
        )
        seen.update(run_cases(strategy, gateway.http, send=send, examples=EXAMPLES_EACH))
    assert len(seen) == len(DOCUMENT_TYPES)
    accepted = {label for label, statuses in seen.items() if 202 in statuses}
    if mode == GenerationMode.POSITIVE:
        # Cross-field rules (check digits, totals) are no JSON Schema: those answer 422; but
        # the schemas must let most document types through.
        assert len(accepted) >= len(DOCUMENT_TYPES) // 2, seen


@pytest.mark.parametrize("path", ["/openapi.json", "/asyncapi.json"])
def test_contract_routes_are_behind_the_admin_token(gateway: RunningGateway, path: str) -> None:
    answer = httpx.get(f"{gateway.admin}{path}", timeout=10)
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"


def test_admin_listener_serves_the_documents_the_cli_writes(gateway: RunningGateway) -> None:
    from gateway.contracts import asyncapi_for, openapi_for

    for listener in ("partner", "admin", "api"):
        assert gateway.openapi(listener) == openapi_for(listener)
    answer = httpx.get(
        f"{gateway.admin}/asyncapi.json",
        headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=10,
    )
    assert answer.json() == asyncapi_for()


def test_an_unknown_listener_is_a_400_naming_the_choices(gateway: RunningGateway) -> None:
    answer = httpx.get(
        f"{gateway.admin}/openapi.json",
        params={"listener": "nope"},
        headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=10,
    )
    assert answer.status_code == 400
    assert "partner, admin, api" in answer.json()["detail"]


@pytest.mark.parametrize("listener", ["admin", "partner", "api"])
def test_sequences_of_calls_hold_the_contract(gateway: RunningGateway, listener: str) -> None:
    """Stateful: schemathesis chains the operations it infers links between (a list's ids into
    the show, a page's cursor into the ack, an order's id into its status) and checks every
    answer on the way."""
    schema = schemathesis.openapi.from_dict(gateway.openapi(listener))
    if listener == "partner":
        schema = schema.include(path_regex="^/partners/")
        base_url, auth = gateway.http, {"authorization": f"Bearer {PULL_TOKEN}"}
    elif listener == "api":
        base_url, auth = gateway.api, {"x-api-key": ACME_KEY}
    else:
        base_url, auth = gateway.admin, {"authorization": f"Bearer {ADMIN_TOKEN}"}

    class Calls(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            if "partner" in (case.path_parameters or {}) and listener == "partner":
                case.path_parameters["partner"] = PARTNER.id
            return {"base_url": base_url, "headers": auth}

        def validate_response(
            self, response: Any, case: schemathesis.Case, *args: Any, **kwargs: Any
        ) -> None:
            case.validate_response(response, checks=checks())

    Calls.run(
        settings=settings(
            max_examples=20,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            stateful_step_count=5,
        )
    )
