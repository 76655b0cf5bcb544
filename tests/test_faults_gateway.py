"""Fault tests of the whole gateway: kill the process, kill the broker, fill the disk.

Each counts what a partner was told was accepted against what reached the queue: lost must be
zero; duplicates on the wire (the same message id twice, at-least-once) are counted and shown.
"""

from __future__ import annotations

import os
import random
import signal
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import NamedTuple

import aio_pika
import anyio
import httpx
import msgspec
import pytest
from gatewaykit import (
    GatewayProcess,
    Partner,
    bound_queue,
    client,
    collect,
    load,
    running,
    write_config,
)
from store_samples import select

from canonical import Envelope, sample_body
from gateway.localbroker import LocalRabbitMQ, free_port
from gateway.relay import relay_report

pytestmark = [pytest.mark.anyio, pytest.mark.rabbitmq, pytest.mark.slow]

ACME = Partner("acme")
GLOBEX = Partner("globex")


async def pending_rows(db: Path) -> int:
    def count() -> int:
        found: int = select(db, "select count(*) from outbox where state = 'pending'")[0][0]
        return found

    return await anyio.to_thread.run_sync(count)


async def wait_drained(db: Path, timeout: float = 60) -> None:
    with anyio.fail_after(timeout):
        while await pending_rows(db):
            await anyio.sleep(0.1)


class OnQueue(NamedTuple):
    """What reached the queue, against what partners were told was accepted."""

    accepted: int
    on_queue: int
    lost: list[str]  # keys answered 2xx whose message never arrived
    never_accepted: set[str]  # keys on the queue no partner was told were accepted
    applied_twice: list[str]  # keys that arrived under two message ids
    duplicates_on_wire: int  # the same message id more than once (at-least-once)

    def __str__(self) -> str:
        return (
            f"accepted={self.accepted} on_queue={self.on_queue} lost={len(self.lost)} "
            f"duplicates_on_wire={self.duplicates_on_wire}"
        )


def count_on_queue(accepted: dict[str, str], seen: list[Envelope]) -> OnQueue:
    """`accepted`: idempotency key -> the message id its partner was given."""
    on_queue: dict[str, set[str]] = defaultdict(set)
    for envelope in seen:
        on_queue[envelope.idempotency_key].add(envelope.message_id)
    return OnQueue(
        accepted=len(accepted),
        on_queue=len(seen),
        lost=[key for key, message_id in accepted.items() if message_id not in on_queue[key]],
        never_accepted=set(on_queue) - set(accepted),
        applied_twice=[key for key, ids in on_queue.items() if len(ids) > 1],
        duplicates_on_wire=len(seen) - len({envelope.message_id for envelope in seen}),
    )


async def test_sigkilled_twenty_times_loses_nothing_that_was_accepted(
    tmp_path: Path, amqp_url: str
) -> None:
    documents, kills, workers = 5000, 20, 24
    http_port, admin_port = free_port(), free_port()
    config = write_config(
        tmp_path,
        amqp_url,
        [ACME],
        http_port=http_port,
        admin_port=admin_port,
        extra='[log]\nlevel = "WARNING"\n',
    )
    gateway = GatewayProcess(config, tmp_path / "gateway.log")
    accepted: dict[str, str] = {}  # idempotency key -> message id the partner was given
    todo = list(range(documents))
    body_of = {n: sample_body("purchase_order", n) for n in todo}

    async def partner(http: httpx.AsyncClient) -> None:
        while todo:
            n = todo.pop()
            key = f"po-{n}"
            body = body_of[n]
            while True:  # a partner retries with the same key until it hears 2xx
                try:
                    response = await http.post(
                        "/webhooks/acme/purchase_order",
                        content=body,
                        headers=ACME.headers(body, webhook_id=key),
                    )
                except httpx.TransportError:
                    await anyio.sleep(0.05)
                    continue
                if response.status_code == 202:
                    accepted[key] = response.json()["message_ids"][0]
                    break
                assert response.status_code in (409, 503), response.text
                await anyio.sleep(0.05)

    async def killer() -> None:
        rng = random.Random(8)
        for _ in range(kills):
            await anyio.sleep(rng.uniform(0.3, 1.2))
            gateway.kill()
            gateway.start()

    async with bound_queue(amqp_url, "test.faults.sigkill") as queue:
        gateway.start()
        try:
            limits = httpx.Limits(max_connections=workers)
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{http_port}", timeout=10, limits=limits
            ) as http:
                with anyio.fail_after(240):
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(killer)
                        for _ in range(workers):
                            tg.start_soon(partner, http)
            await wait_drained(tmp_path / "gateway.db")
            seen = await collect(queue)
        finally:
            gateway.terminate()

    counted = count_on_queue(accepted, seen)
    print(f"\n{counted} kills={kills}")
    assert len(accepted) == documents
    assert counted.lost == []
    assert counted.never_accepted == set()
    assert counted.applied_twice == []


async def test_broker_killed_during_relay_keeps_ingest_and_drains_in_order(
    tmp_path: Path,
) -> None:
    node = LocalRabbitMQ(tmp_path / "node")
    await anyio.to_thread.run_sync(node.start)
    accepted: dict[str, list[str]] = {"acme": [], "globex": []}
    statuses: Counter[int] = Counter()
    try:
        config = load(write_config(tmp_path, node.url, [ACME, GLOBEX]))
        async with bound_queue(node.url, "test.faults.broker", delete=False):
            pass  # durable: it outlives the broker's kill and keeps what was confirmed
        async with running(config) as gateway, client(gateway) as http:

            async def post(partner: Partner, n: int) -> None:
                body = sample_body("purchase_order", n)
                response = await http.post(
                    f"/webhooks/{partner.id}/purchase_order",
                    content=body,
                    headers=partner.headers(body),
                )
                statuses[response.status_code] += 1
                if response.status_code == 202:
                    accepted[partner.id].append(response.json()["message_ids"][0])

            for n in range(300):
                await post(ACME, n)
                await post(GLOBEX, n)
                if n == 100:
                    await anyio.to_thread.run_sync(node.kill)
                    backlog_while_down = await pending_rows(tmp_path / "gateway.db")
                if n == 250:
                    await anyio.to_thread.run_sync(node.start)
            await wait_drained(tmp_path / "gateway.db")
        async with bound_queue(node.url, "test.faults.broker", delete=False) as queue:
            seen = await collect(queue)
    finally:
        await anyio.to_thread.run_sync(node.destroy)

    first_seen: dict[str, list[str]] = {"acme": [], "globex": []}
    for envelope in seen:
        ids = first_seen[envelope.partner_id]
        if envelope.message_id not in ids:
            ids.append(envelope.message_id)
    duplicates = len(seen) - sum(len(ids) for ids in first_seen.values())
    lost = {p: len(set(accepted[p]) - set(first_seen[p])) for p in accepted}
    print(
        f"\naccepted={sum(map(len, accepted.values()))} on_queue={len(seen)} lost={lost} "
        f"duplicates_on_wire={duplicates} backlog_when_killed={backlog_while_down}"
    )
    assert statuses == {202: 600}  # ingest never noticed the broker was gone
    assert lost == {"acme": 0, "globex": 0}
    assert first_seen == accepted  # per partner, in the order accepted


async def test_full_disk_answers_503_keeps_every_2xx_and_recovers(
    tmp_path: Path, amqp_url: str, small_disk: Path
) -> None:
    config = load(write_config(tmp_path, amqp_url, [ACME]))
    config = msgspec.structs.replace(
        config, store=msgspec.structs.replace(config.store, path=str(small_disk / "gateway.db"))
    )
    accepted: list[str] = []
    statuses: Counter[int] = Counter()
    (small_disk / "filler").write_bytes(b"\0" * 300_000)  # freed later: "space returns"
    async with (
        bound_queue(amqp_url, "test.faults.disk"),
        running(config) as gateway,
        client(gateway) as http,
    ):

        async def post(n: int) -> int:
            body = sample_body("purchase_order", n)
            response = await http.post(
                "/webhooks/acme/purchase_order",
                content=body,
                headers=ACME.headers(body, webhook_id=f"po-{n}"),
            )
            statuses[response.status_code] += 1
            if response.status_code == 202:
                accepted.append(f"po-{n}")
            return response.status_code

        n = 0
        with anyio.fail_after(120):
            while await post(n) != 503:
                n += 1
            assert await post(n + 1) == 503  # still full: still refused, not half-kept
            (small_disk / "filler").unlink()
            recovered = await post(n + 2)

    kept = {
        key for (key,) in select(small_disk / "gateway.db", "select idempotency_key from outbox")
    }
    print(f"\naccepted={len(accepted)} statuses={dict(statuses)}")
    assert set(accepted) <= kept  # every 2xx has its row
    assert f"po-{n}" not in kept
    assert f"po-{n + 1}" not in kept
    assert recovered == 202


async def test_writer_process_killed_under_ingest_and_idle_loses_nothing(
    tmp_path: Path, amqp_url: str
) -> None:
    # The writer process holds the store's write connection and the relay: killed while
    # partners post and the relay publishes, then once more with nobody posting. Partners
    # retry with their key until they hear 2xx; the store's poll brings a new process back.
    documents, workers = 600, 12
    config = load(write_config(tmp_path, amqp_url, [ACME]))
    accepted: dict[str, str] = {}
    kills = 0
    async with bound_queue(amqp_url, "test.faults.writer") as queue:
        async with running(config) as gateway, client(gateway) as http:
            store = gateway.store
            assert store is not None

            async def partner(first: int) -> None:
                for n in range(first, documents, workers):
                    key, body = f"po-{n}", sample_body("purchase_order", n)
                    while True:
                        response = await http.post(
                            "/webhooks/acme/purchase_order",
                            content=body,
                            headers=ACME.headers(body, webhook_id=key),
                        )
                        if response.status_code == 202:
                            accepted[key] = response.json()["message_ids"][0]
                            break
                        assert response.status_code in (409, 503), response.text
                        await anyio.sleep(0.05)

            async def kill_writer() -> int:
                with anyio.fail_after(30):
                    while (pid := store.writer_pid) is None:
                        await anyio.sleep(0.02)
                os.kill(pid, signal.SIGKILL)
                return pid

            with anyio.fail_after(120):
                async with anyio.create_task_group() as tg:
                    for first in range(workers):
                        tg.start_soon(partner, first)
                    for _ in range(4):
                        await anyio.sleep(0.25)
                        await kill_writer()
                        kills += 1
            idle_kill = await kill_writer()
            kills += 1
            with anyio.fail_after(60):
                while store.writer_pid in (None, idle_kill) or await pending_rows(
                    tmp_path / "gateway.db"
                ):
                    await anyio.sleep(0.1)
        seen = await collect(queue)

    counted = count_on_queue(accepted, seen)
    print(f"\n{counted} writer_kills={kills}")
    assert len(accepted) == documents
    assert counted.lost == []
    assert counted.never_accepted == set()
    assert counted.applied_twice == []


async def test_a_relay_the_broker_refuses_is_restarted_while_ingest_goes_on(
    tmp_path: Path, amqp_url: str
) -> None:
    # The events exchange exists with another type: the relay's declare is refused
    # (PRECONDITION_FAILED), which is no connection loss. The writer process logs it and
    # starts the relay again after a pause; webhooks are accepted meanwhile and readiness
    # says the broker is not there. Once the exchange is fixed, the backlog drains.
    exchange = f"test.faults.refused.{uuid.uuid4().hex[:8]}"
    path = write_config(tmp_path, amqp_url, [ACME])
    setting = f'[amqp]\nevents_exchange = "{exchange}"\n'
    path.write_text(path.read_text().replace("[amqp]\n", setting))
    config = load(path)
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        wrong = await channel.declare_exchange(exchange, "direct", durable=True)
        async with running(config) as gateway, client(gateway) as http:
            admin = f"http://127.0.0.1:{gateway.admin_port}"
            statuses = []
            for n in range(20):
                body = sample_body("purchase_order", n)
                response = await http.post(
                    "/webhooks/acme/purchase_order", content=body, headers=ACME.headers(body)
                )
                statuses.append(response.status_code)
            await anyio.sleep(1)
            ready_while_refused = (await http.get(f"{admin}/readyz")).status_code
            assert gateway.store is not None
            report = relay_report(gateway.store)
            await wrong.delete()
            topic = await channel.declare_exchange(exchange, "topic", durable=True)
            queue = await channel.declare_queue(exclusive=True)
            await queue.bind(topic, "#")
            with anyio.fail_after(60):
                while await pending_rows(tmp_path / "gateway.db"):
                    await anyio.sleep(0.1)
                while (ready_after := (await http.get(f"{admin}/readyz")).status_code) != 200:
                    await anyio.sleep(0.1)  # readiness reads the relay's report, polled
        seen = await collect(queue)
        await topic.delete()

    assert statuses == [202] * 20
    assert ready_while_refused == 503
    assert report is not None
    assert not report.statistics.connected
    assert "PRECONDITION_FAILED" in (report.error or "")
    assert ready_after == 200
    assert len({envelope.message_id for envelope in seen}) == 20


async def test_sighup_reloads_the_file_and_neither_kills_the_gateway_nor_its_writer(
    tmp_path: Path, amqp_url: str
) -> None:
    http_port, admin_port = free_port(), free_port()
    config = write_config(tmp_path, amqp_url, [ACME], http_port=http_port, admin_port=admin_port)
    gateway = GatewayProcess(config, tmp_path / "gateway.log")
    beta = Partner("beta")
    accepted: list[str] = []

    async def post(http: httpx.AsyncClient, n: int, partner: Partner = ACME) -> int:
        body = sample_body("purchase_order", n)
        response = await http.post(
            f"/webhooks/{partner.id}/purchase_order", content=body, headers=partner.headers(body)
        )
        if response.status_code == 202:
            accepted.append(response.json()["message_ids"][0])
        return response.status_code

    def reload_lines() -> list[dict[str, object]]:
        lines = [msgspec.json.decode(line) for line in gateway.log.read_bytes().splitlines()]
        return [line for line in lines if str(line.get("event")).startswith("reload")]

    async with bound_queue(amqp_url, "test.faults.sighup") as queue:
        gateway.start()
        assert gateway.process is not None
        try:
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{http_port}", timeout=10
            ) as http:
                with anyio.fail_after(30):
                    while True:
                        try:
                            assert await post(http, 0) == 202
                            break
                        except httpx.TransportError:
                            await anyio.sleep(0.1)
                before = await post(http, 1, beta)
                writer = gateway.children()
                write_config(
                    tmp_path, amqp_url, [ACME, beta], http_port=http_port, admin_port=admin_port
                )
                # The whole group, as a closed terminal or `kill -HUP -PGID` sends it.
                os.killpg(gateway.process.pid, signal.SIGHUP)
                with anyio.fail_after(10):
                    while not reload_lines() and gateway.process.poll() is None:
                        await anyio.sleep(0.05)
                assert gateway.process.poll() is None, "SIGHUP killed the gateway"
                after = await post(http, 2, beta)
                assert await post(http, 3) == 202
                still = gateway.children()
        finally:
            exit_code = gateway.terminate()
        seen = await collect(queue)

    (line,) = reload_lines()
    assert line["level"] == "info"
    assert "partner beta: added" in str(line["event"])
    assert (before, after) == (404, 202)  # unknown before the reload, served after it
    assert still == writer  # the store's writer process was not killed either
    assert exit_code == 0  # SIGTERM still drains and stops in order
    assert sorted(envelope.message_id for envelope in seen) == sorted(accepted)
