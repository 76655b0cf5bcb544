"""Hot reload under signed load, against the real RabbitMQ node and a real order desk.

acme is a supplier with an open purchase-order thread (its acknowledgement timer armed under
a 24 h SLA) and an order desk on loopback; globex and acme post signed webhooks all along. The
file is rewritten and reloaded three times: acme's secret rotated and its SLA halved with a
partner added; acme's old secret dropped; then a file with two mistakes, refused.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import anyio
import httpx
import pytest
from configkit import base, compose, erp_section, partner, webhook, workflow
from delivery_receiver import OK, Receiver, answering
from gatewaykit import Partner, bound_queue, drain, load, running, write_config
from test_erp_ingress_gateway import Erp, until
from test_workflow_gateway import until_status
from workflow_documents import order

from canonical import encode_document
from canonical.samples import sample_body
from gateway.app import Gateway
from protocols.http.server import serve

pytestmark = [pytest.mark.anyio, pytest.mark.rabbitmq]

HOUR = 3600.0


def config_text(
    tmp_path: Path,
    amqp_url: str,
    erp: Erp,
    desk: tuple[Receiver, int],
    *,
    acme_secrets: Sequence[str],
    ack_sla_hours: float,
    partners: Sequence[Partner] = (),
    mistakes: str = "",
) -> str:
    receiver, port = desk
    return compose(
        base(tmp_path, amqp_url, log_level="WARNING"),
        erp_section(erp),
        workflow({"acme": {"ack_sla_hours": ack_sla_hours}}),
        partner(
            "acme",
            acme_secrets,
            name="Acme Supplies",
            sends=["purchase_order", "purchase_order_ack"],
            receives=["purchase_order"],
            extra=webhook(f"http://127.0.0.1:{port}/hooks/orders", receiver.secret) + mistakes,
        ),
        *(partner(p.id, [p.secret], sends=["purchase_order"]) for p in partners),
    )


@dataclass
class Load:
    """Signed posts, one after another per partner, until stopped: each answer kept."""

    http: httpx.AsyncClient
    signers: dict[str, Partner]
    answers: dict[str, list[int]] = field(default_factory=dict)
    accepted: list[str] = field(default_factory=list)
    stopped: anyio.Event = field(default_factory=anyio.Event)

    async def post(self, partner_id: str, n: int) -> int:
        body = sample_body("purchase_order", n)
        signer = self.signers[partner_id]  # read once: the key this request is signed with
        response = await self.http.post(
            f"/webhooks/{partner_id}/purchase_order", content=body, headers=signer.headers(body)
        )
        if response.status_code == 202:
            self.accepted.append(response.json()["message_ids"][0])
        return response.status_code

    async def run(self, partner_id: str) -> None:
        n = 0
        while not self.stopped.is_set():
            n += 1
            status = await self.post(partner_id, n)
            self.answers.setdefault(partner_id, []).append(status)
            await anyio.sleep(0.005)


async def ack_due(gateway: Gateway, po_number: str) -> float:
    assert gateway.store is not None
    (thread,) = await gateway.store.workflow.threads_of_order(po_number)
    (due,) = [
        at
        for kind, at, _, state in await gateway.store.workflow.timers_of(thread.id)
        if kind == "acknowledgement_due" and state == "armed"
    ]
    return due


async def test_reload_swaps_secrets_slas_and_partners_under_load_and_refuses_a_broken_file(
    tmp_path: Path, amqp_url: str
) -> None:
    old_acme, new_acme = Partner("acme"), Partner("acme")
    globex, initech = Partner("globex"), Partner("initech")
    po = order(41)
    erp = Erp()
    receiver = Receiver(answering(then=OK))
    config_path = tmp_path / "gateway.toml"
    async with anyio.create_task_group() as tg:
        port = await tg.start(partial(serve, receiver, host="127.0.0.1", port=0))
        text = partial(config_text, tmp_path, amqp_url, erp, (receiver, port))
        config_path.write_text(
            text(acme_secrets=[old_acme.secret], ack_sla_hours=24, partners=[globex])
        )
        gateway = Gateway(load(config_path), config_path=config_path)
        http = httpx.AsyncClient(timeout=10)
        async with (
            http,
            bound_queue(amqp_url, "test.reload.partners", "purchase_order.*") as queue,
            anyio.create_task_group() as running,
        ):
            await running.start(gateway.run)
            http.base_url = httpx.URL(f"http://127.0.0.1:{gateway.http_port}")
            await until(lambda: all(c.statistics().consuming for c in gateway.erp_consumers))
            await erp.publish(amqp_url, encode_document(po), "erp-po-41")
            await until_status(gateway, po.po_number, "sent")
            due_before = await ack_due(gateway, po.po_number)

            load_ = Load(http, {"acme": old_acme, "globex": globex})
            running.start_soon(load_.run, "acme")
            running.start_soon(load_.run, "globex")
            await anyio.sleep(0.3)
            load_.signers["initech"] = initech
            initech_before = await load_.post("initech", 0)
            enable = f"http://127.0.0.1:{gateway.admin_port}/endpoints/initech/enable"
            operator_before = (await http.post(enable, json={})).status_code

            # 1. Rotate acme's secret (both valid), halve its SLA, add initech.
            config_path.write_text(
                text(
                    acme_secrets=[old_acme.secret, new_acme.secret],
                    ack_sla_hours=12,
                    partners=[globex, initech],
                )
            )
            first = await gateway.reload()
            load_.signers["acme"] = new_acme  # the partner moves to its new key
            await anyio.sleep(0.3)
            due_after = await ack_due(gateway, po.po_number)
            operator_after = (await http.post(enable, json={})).status_code
            running.start_soon(load_.run, "initech")

            # 2. Drop acme's old secret.
            config_path.write_text(
                text(acme_secrets=[new_acme.secret], ack_sla_hours=12, partners=[globex, initech])
            )
            second = await gateway.reload()
            old_key_after = await Load(http, {"acme": old_acme}).post("acme", 999)
            await anyio.sleep(0.3)

            # 3. A file with two mistakes: refused whole, the gateway serves on.
            config_path.write_text(
                text(
                    acme_secrets=[new_acme.secret],
                    ack_sla_hours=6,
                    partners=[globex, initech],
                    mistakes='colour = "blue"\nconcurrency = -1\n',
                )
            )
            admin = f"http://127.0.0.1:{gateway.admin_port}"
            broken = await http.post(f"{admin}/config/reload", json={})
            await anyio.sleep(0.3)
            due_unchanged = await ack_due(gateway, po.po_number)
            load_.stopped.set()
            await anyio.sleep(0.1)
            ready = (await http.get(f"{admin}/readyz")).status_code
            seen = [m.message_id for m in await drain(queue, expect=len(load_.accepted) + 1)]
            gateway.stop()
        tg.cancel_scope.cancel()

    assert first.applied
    assert first.generation == 1
    assert first.changes == (
        "partner initech: added",
        "partner acme: secrets changed",
        "[workflow] rules changed",
    )
    assert first.pending_restart == ()
    assert initech_before == 404
    # The armed acknowledgement is due 12 h sooner, as the new SLA says.
    assert due_after == pytest.approx(due_before - 12 * HOUR)
    assert second.applied
    assert second.generation == 2
    assert old_key_after == 401  # the dropped key is refused once the swap is done
    assert (operator_before, operator_after) == (404, 200)  # the admin API knows initech
    # The broken file: 422 problem+json, every mistake located in the file.
    assert broken.status_code == 422
    assert broken.headers["content-type"] == "application/problem+json"
    problem = broken.json()
    assert "configuration 2 runs on" in problem["detail"]
    errors = [e["message"] for e in problem["errors"]]
    assert len(errors) == 2, errors
    assert any("colour" in e for e in errors)
    assert any("concurrency" in e for e in errors)
    assert all(str(config_path) in e for e in errors), json.dumps(errors)
    assert due_unchanged == due_after  # the refused file's 6 h SLA was not applied
    # No request that should have succeeded failed, before, during or after the swaps.
    for partner_id in ("acme", "globex", "initech"):
        answers = load_.answers[partner_id]
        assert set(answers) == {202}, (partner_id, sorted(set(answers)))
    assert len(load_.answers["acme"]) > 10
    # Every accepted message reached the events exchange once (and the ERP's order).
    accepted = set(load_.accepted)
    assert sorted(m for m in seen if m in accepted) == sorted(load_.accepted)
    assert len(seen) == len(accepted) + 1  # and the ERP's order, `purchase_order.erp`
    assert ready == 200


async def test_a_reload_carries_the_partners_x12_replay_window_to_the_stores_purge(
    tmp_path: Path, amqp_url: str
) -> None:
    acme = Partner("acme")

    def write(window_s: int) -> Path:
        edi = f"[partners.edi]\nreplay_window_s = {window_s}\n"
        return write_config(tmp_path, amqp_url, [acme], partner_extra=edi)

    path = write(86_400)
    async with running(load(path), config_path=path) as gateway:
        assert gateway.store is not None
        before = gateway.store.retention.x12_replay_window_s
        write(7 * 86_400)
        outcome = await gateway.reload()
        after = gateway.store.retention.x12_replay_window_s

    assert outcome.changes == ("partner acme: edi changed",)
    assert (before, after) == (86_400, 7 * 86_400)
