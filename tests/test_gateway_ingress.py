"""End to end on real parts: signed webhook -> gateway on loopback -> SQLite -> RabbitMQ queue."""

from __future__ import annotations

from pathlib import Path

import anyio
import jsonschema
import orjson
import pytest
from gatewaykit import DOCUMENTS, Partner, bound_queue, client, drain, load, running, write_config
from store_samples import select

from canonical import DOCUMENT_TYPES, decode_envelope, document_schemas, sample_body

pytestmark = [pytest.mark.anyio, pytest.mark.rabbitmq]

ACME = Partner("acme")
GLOBEX = Partner("globex")


def outbox_rows(folder: Path) -> int:
    count: int = select(folder / "gateway.db", "select count(*) from outbox")[0][0]
    return count


async def test_signed_document_reaches_the_queue_as_one_canonical_message(
    tmp_path: Path, amqp_url: str
) -> None:
    config = load(write_config(tmp_path, amqp_url, [ACME, GLOBEX]))
    body = sample_body("purchase_order", 7)
    async with bound_queue(amqp_url, "test.ingress.one", "purchase_order.acme") as queue:
        async with running(config) as gateway, client(gateway) as http:
            response = await http.post(
                "/webhooks/acme/purchase_order", content=body, headers=ACME.headers(body)
            )
            assert response.status_code == 202
            answer = response.json()
            messages = await drain(queue, expect=1)

    assert len(messages) == 1
    message = messages[0]
    assert message.message_id == answer["message_ids"][0]
    assert message.correlation_id == answer["correlation_id"]
    assert message.type == "purchase_order"
    assert message.headers["partner_id"] == "acme"
    assert message.headers["schema_version"] == 1
    assert message.delivery_mode == 2
    envelope = decode_envelope(message.body)
    assert envelope.partner_id == "acme"
    assert envelope.document == decode_envelope(message.body).document
    assert envelope.document.po_number == orjson.loads(body)["po_number"]


async def test_duplicate_delivery_is_replayed_and_publishes_nothing_more(
    tmp_path: Path, amqp_url: str
) -> None:
    config = load(write_config(tmp_path, amqp_url, [ACME]))
    body = sample_body("purchase_order", 1)
    headers = ACME.headers(body, webhook_id="msg_dup_1")
    async with bound_queue(amqp_url, "test.ingress.dup") as queue:
        async with running(config) as gateway, client(gateway) as http:
            first = await http.post("/webhooks/acme/purchase_order", content=body, headers=headers)
            again = await http.post("/webhooks/acme/purchase_order", content=body, headers=headers)
            messages = await drain(queue, expect=1)

    assert (first.status_code, again.status_code) == (202, 202)
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert len(messages) == 1
    assert outbox_rows(tmp_path) == 1


async def test_same_key_with_another_body_is_422_and_stores_nothing(
    tmp_path: Path, amqp_url: str
) -> None:
    config = load(write_config(tmp_path, amqp_url, [ACME]))
    first_body, other_body = sample_body("purchase_order", 1), sample_body("purchase_order", 2)
    async with running(config) as gateway, client(gateway) as http:
        await http.post(
            "/webhooks/acme/purchase_order",
            content=first_body,
            headers=ACME.headers(first_body, webhook_id="msg_k"),
        )
        response = await http.post(
            "/webhooks/acme/purchase_order",
            content=other_body,
            headers=ACME.headers(other_body, webhook_id="msg_k"),
        )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 422
    assert outbox_rows(tmp_path) == 1


async def test_concurrent_requests_with_one_key_publish_once_and_the_rest_see_409(
    tmp_path: Path, amqp_url: str
) -> None:
    config = load(write_config(tmp_path, amqp_url, [ACME]))
    body = sample_body("purchase_order", 3)
    headers = ACME.headers(body, webhook_id="msg_race")
    statuses: list[int] = []
    async with bound_queue(amqp_url, "test.ingress.race") as queue:
        async with running(config) as gateway, client(gateway) as http:

            async def post() -> None:
                response = await http.post(
                    "/webhooks/acme/purchase_order", content=body, headers=headers
                )
                statuses.append(response.status_code)

            async with anyio.create_task_group() as tg:
                for _ in range(40):
                    tg.start_soon(post)
            messages = await drain(queue, expect=1)

    assert set(statuses) <= {202, 409}
    assert 409 in statuses  # 40 at once: some arrive while the first is being committed
    assert len(messages) == 1


@pytest.mark.parametrize(
    ("path", "headers_for", "content_type", "status"),
    [
        ("/webhooks/nobody/purchase_order", "acme", "application/json", 404),
        ("/webhooks/acme/purchase_order", "unsigned", "application/json", 401),
        ("/webhooks/acme/purchase_order", "globex", "application/json", 401),
        ("/webhooks/acme/invoice", "acme", "application/json", 403),
        ("/webhooks/acme/purchase_order", "acme", "text/csv", 415),
    ],
)
async def test_refused_requests_answer_problem_json_and_store_nothing(
    tmp_path: Path, amqp_url: str, path: str, headers_for: str, content_type: str, status: int
) -> None:
    config = load(write_config(tmp_path, amqp_url, [ACME, GLOBEX]))
    body = sample_body("purchase_order", 4)
    signer = {"acme": ACME, "globex": GLOBEX}.get(headers_for)
    headers = signer.headers(body) if signer else {}
    headers["content-type"] = content_type
    async with running(config) as gateway, client(gateway) as http:
        response = await http.post(path, content=body, headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status
    assert outbox_rows(tmp_path) == 0


async def test_an_idempotency_key_over_255_characters_is_400_and_stores_nothing(
    tmp_path: Path, amqp_url: str
) -> None:
    # The key travels in the inbox's unique index: bounded where it enters, where the sender
    # hears of it.
    config = load(write_config(tmp_path, amqp_url, [ACME]))
    body = sample_body("purchase_order", 5)
    headers = {**ACME.headers(body), "idempotency-key": "k" * 256}
    async with running(config) as gateway, client(gateway) as http:
        response = await http.post("/webhooks/acme/purchase_order", content=body, headers=headers)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert "at most 255" in response.json()["detail"]
    assert outbox_rows(tmp_path) == 0


@pytest.mark.parametrize("length", [129, 200, 255, 256])
async def test_a_webhook_id_over_128_characters_is_400_and_stores_nothing(
    tmp_path: Path, amqp_url: str, length: int
) -> None:
    # It becomes the envelope's causation_id, an id of at most 128 characters: longer, the
    # message would be published and then fail every consumer's decode.
    config = load(write_config(tmp_path, amqp_url, [ACME]))
    body = sample_body("purchase_order", 5)
    headers = ACME.headers(body, webhook_id="m" * length)  # signed with it
    async with running(config) as gateway, client(gateway) as http:
        response = await http.post("/webhooks/acme/purchase_order", content=body, headers=headers)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert (
        f"webhook-id is {length} characters; it may have at most 128" in (response.json()["detail"])
    )
    assert outbox_rows(tmp_path) == 0


async def test_a_signed_request_replayed_with_fresh_idempotency_keys_is_one_message(
    tmp_path: Path, amqp_url: str
) -> None:
    # The unsigned Idempotency-Key must not make a captured request new (issue 17, item 5).
    config = load(write_config(tmp_path, amqp_url, [ACME]))
    body = sample_body("purchase_order", 21)
    captured = ACME.headers(body, webhook_id="msg_captured")
    async with bound_queue(amqp_url, "test.ingress.replayed") as queue:
        async with running(config) as gateway, client(gateway) as http:
            answers = [
                await http.post(
                    "/webhooks/acme/purchase_order",
                    content=body,
                    headers={**captured, "idempotency-key": f"fresh-{n}"},
                )
                for n in range(3)
            ]
            messages = await drain(queue, expect=1)

    assert [a.status_code for a in answers] == [202, 202, 202]
    assert [a.headers.get("idempotent-replayed") for a in answers] == [None, "true", "true"]
    assert answers[1].content == answers[2].content == answers[0].content
    assert len(messages) == 1
    assert outbox_rows(tmp_path) == 1


async def test_a_retry_signed_anew_with_the_same_idempotency_key_is_one_message(
    tmp_path: Path, amqp_url: str
) -> None:
    config = load(write_config(tmp_path, amqp_url, [ACME]))
    body, other = sample_body("purchase_order", 22), sample_body("purchase_order", 23)
    async with running(config) as gateway, client(gateway) as http:
        answers = [
            await http.post(
                "/webhooks/acme/purchase_order",
                content=content,
                headers={**ACME.headers(content), "idempotency-key": "order-22"},
            )
            for content in (body, body, other)
        ]

    assert [a.status_code for a in answers] == [202, 202, 422]
    assert answers[1].content == answers[0].content
    assert answers[2].json()["type"].endswith("idempotency-key-reused")
    assert outbox_rows(tmp_path) == 1


async def test_body_over_the_partner_limit_is_413(tmp_path: Path, amqp_url: str) -> None:
    config = load(write_config(tmp_path, amqp_url, [ACME], partner_extra="max_body_bytes = 1024"))
    body = b'{"padding": "' + b"x" * 4096 + b'"}'
    async with running(config) as gateway, client(gateway) as http:
        response = await http.post(
            "/webhooks/acme/purchase_order", content=body, headers=ACME.headers(body)
        )
    assert response.status_code == 413
    assert outbox_rows(tmp_path) == 0


async def test_invalid_document_is_422_naming_every_bad_field(
    tmp_path: Path, amqp_url: str
) -> None:
    config = load(write_config(tmp_path, amqp_url, [ACME]))
    document = orjson.loads(sample_body("purchase_order", 5))
    document["currency"] = "euro"
    document["lines"][0]["quantity"]["value"] = "-3"
    body = orjson.dumps(document)
    async with running(config) as gateway, client(gateway) as http:
        response = await http.post(
            "/webhooks/acme/purchase_order", content=body, headers=ACME.headers(body)
        )
    assert response.status_code == 422
    paths = {error["path"] for error in response.json()["errors"]}
    assert {"$.currency", "$.lines[0].quantity.value"} <= paths
    assert outbox_rows(tmp_path) == 0


async def test_partner_over_its_rate_limit_gets_429_with_retry_after(
    tmp_path: Path, amqp_url: str
) -> None:
    path = write_config(tmp_path, amqp_url, [ACME])
    path.write_text(
        path.read_text().replace(
            "per_second = 100000.0, burst = 100000", "per_second = 0.5, burst = 2"
        )
    )
    config = load(path)
    statuses = []
    async with running(config) as gateway, client(gateway) as http:
        for n in range(4):
            body = sample_body("purchase_order", n)
            response = await http.post(
                "/webhooks/acme/purchase_order", content=body, headers=ACME.headers(body)
            )
            statuses.append(response.status_code)
    assert statuses == [202, 202, 429, 429]
    assert int(response.headers["retry-after"]) >= 1
    assert outbox_rows(tmp_path) == 2


async def test_a_crash_in_the_intake_answers_500_and_keeps_the_body_as_a_dead_letter(
    tmp_path: Path, amqp_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(document_type: str, body: bytes) -> object:
        raise RuntimeError("a bug in a codec")

    monkeypatch.setattr("actors.partner.decode_document", crash)
    config = load(write_config(tmp_path, amqp_url, [ACME]))
    body = sample_body("purchase_order", 11)
    async with running(config) as gateway, client(gateway) as http:
        response = await http.post(
            "/webhooks/acme/purchase_order", content=body, headers=ACME.headers(body)
        )
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert outbox_rows(tmp_path) == 0
    (letter,) = select(
        tmp_path / "gateway.db", "select source, partner_id, reason, payload from dead_letters"
    )
    assert letter == ("intake:acme", "acme", "RuntimeError: a bug in a codec", body)


async def test_admin_listener_reports_health_readiness_and_metrics(
    tmp_path: Path, amqp_url: str
) -> None:
    config = load(write_config(tmp_path, amqp_url, [ACME]))
    body = sample_body("purchase_order", 6)
    async with (
        bound_queue(amqp_url, "test.ingress.admin"),
        running(config) as gateway,
        client(gateway) as http,
    ):
        await http.post("/webhooks/acme/purchase_order", content=body, headers=ACME.headers(body))
        admin = f"http://127.0.0.1:{gateway.admin_port}"
        with anyio.fail_after(10):
            while (await http.get(f"{admin}/readyz")).status_code != 200:
                await anyio.sleep(0.05)
            # The relay's figures come from the writer process, read twice a second.
            while "gateway_relay_confirmed_total 1.0" not in (
                metrics := (await http.get(f"{admin}/metrics")).text
            ):
                await anyio.sleep(0.05)
        health = await http.get(f"{admin}/healthz")
    assert health.status_code == 200
    assert "gateway_relay_confirm_latency_seconds_count 1.0" in metrics
    assert 'gateway_relay_confirm_latency_seconds_bucket{le="+Inf"} 1.0' in metrics
    assert (
        'gateway_requests_total{document="purchase_order",partner="acme",status="202"} 1.0'
        in metrics
    )
    assert "gateway_mailbox_depth" in metrics
    assert "gateway_store_commit_batch_size_count" in metrics


async def test_orderly_shutdown_publishes_what_was_accepted_before_it_returns(
    tmp_path: Path, amqp_url: str
) -> None:
    path = write_config(tmp_path, amqp_url, [ACME])
    # One row per relay pass: the relay falls behind the posts, so rows are still pending
    # when the gateway is told to stop, and only the shutdown's flush publishes them.
    path.write_text(path.read_text().replace("[amqp]\n", "[amqp]\nrelay_batch_size = 1\n"))
    config = load(path)
    accepted = 0
    async with bound_queue(amqp_url, "test.ingress.shutdown") as queue:
        async with running(config) as gateway, client(gateway) as http:

            async def post(first: int) -> None:
                nonlocal accepted
                for n in range(first, 1200, 24):
                    body = sample_body("purchase_order", n)
                    response = await http.post(
                        "/webhooks/acme/purchase_order", content=body, headers=ACME.headers(body)
                    )
                    accepted += response.status_code == 202

            async with anyio.create_task_group() as tg:
                for first in range(24):
                    tg.start_soon(post, first)
            # Leaving `running` stops the gateway at once, with the relay still behind.
        pending = select(
            tmp_path / "gateway.db", "select count(*) from outbox where state='pending'"
        )
        messages = await drain(queue, expect=accepted)

    assert accepted == 1200
    assert pending == [(0,)]
    assert len({m.message_id for m in messages}) == 1200


# Bodies fuzzing found leaking other errors than InvalidDocument from the codec (issue 17).
HOSTILE_BODIES = {
    "not UTF-8": b'{"\xa1":""}',
    "tag past a double's range": b'{"document_type":1e400}',
    "tag past the 4,300-digit limit": b'{"document_type":' + b"9" * 4400 + b"}",
    "nested 1,000 deep": b'{"x":' + b"[" * 1000 + b"]" * 1000 + b"}",
    "nested 100,000 deep": b'{"lines":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
}


async def test_hostile_bodies_are_422_and_keep_nothing(tmp_path: Path, amqp_url: str) -> None:
    config = load(
        write_config(tmp_path, amqp_url, [ACME], partner_extra="max_body_bytes = 1048576")
    )
    answers = {}
    async with running(config) as gateway, client(gateway) as http:
        for name, body in HOSTILE_BODIES.items():
            response = await http.post(
                "/webhooks/acme/purchase_order", content=body, headers=ACME.headers(body)
            )
            named = bool(response.json().get("errors"))
            answers[name] = (response.status_code, response.headers["content-type"], named)
    assert answers == dict.fromkeys(HOSTILE_BODIES, (422, "application/problem+json", True))
    assert outbox_rows(tmp_path) == 0
    assert select(tmp_path / "gateway.db", "select count(*) from dead_letters") == [(0,)]


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (
            sample_body("purchase_order", 12).replace(b"PO-0000012", b"PO-00\\u000012"),
            "$.po_number",
        ),
        (sample_body("purchase_order", 12).replace(b"PO-0000012", b"PO-0000012\\n"), "$.po_number"),
        (
            sample_body("purchase_order", 12).replace(b'"sku":', b'"sku":"X-1","sku":', 1),
            "$.lines[0].sku",
        ),
    ],
    ids=["NUL in the PO number", "newline after it", "a repeated key"],
)
async def test_ambiguous_document_is_422_naming_the_field(
    tmp_path: Path, amqp_url: str, body: bytes, path: str
) -> None:
    config = load(write_config(tmp_path, amqp_url, [ACME]))
    async with running(config) as gateway, client(gateway) as http:
        response = await http.post(
            "/webhooks/acme/purchase_order", content=body, headers=ACME.headers(body)
        )
    assert response.status_code == 422
    assert [error["path"] for error in response.json()["errors"]] == [path]
    assert outbox_rows(tmp_path) == 0


async def test_every_published_envelope_matches_the_published_schema(
    tmp_path: Path, amqp_url: str
) -> None:
    # Every document type, each with ids at their limits, and one request past them: what a
    # consumer validating with `gateway schema`'s envelope.schema.json reads off the queue.
    path = write_config(tmp_path, amqp_url, [ACME])
    path.write_text(
        path.read_text().replace(DOCUMENTS, orjson.dumps(sorted(DOCUMENT_TYPES)).decode())
    )
    config = load(path)
    schema = jsonschema.Draft202012Validator(
        document_schemas()["envelope"],
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )
    async with bound_queue(amqp_url, "test.ingress.schema") as queue:
        async with running(config) as gateway, client(gateway) as http:
            past = sample_body("purchase_order", 99)
            await http.post(
                "/webhooks/acme/purchase_order",
                content=past,
                headers=ACME.headers(past, webhook_id="p" * 129),
            )
            for n, document_type in enumerate(sorted(DOCUMENT_TYPES)):
                body = sample_body(document_type, n)
                webhook_id = f"{n:03}".ljust(128, "w")
                headers = {
                    **ACME.headers(body, webhook_id=webhook_id),
                    "idempotency-key": f"{n:03}".ljust(255, "k"),
                }
                response = await http.post(
                    f"/webhooks/acme/{document_type}", content=body, headers=headers
                )
                assert response.status_code == 202, response.text
            messages = await drain(queue, expect=len(DOCUMENT_TYPES))

    assert sorted(m.type for m in messages) == sorted(DOCUMENT_TYPES)
    for message in messages:
        document = orjson.loads(message.body)
        errors = [f"{e.json_path}: {e.message}" for e in schema.iter_errors(document)]
        assert errors == [], message.type
        assert decode_envelope(message.body).document_type == message.type
