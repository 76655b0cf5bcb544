"""One dead-letter store, every source: listed, shown, counted and replayed by source.

The store is seeded by the real code paths that give up on a message (a courier, the relay's
`mark_dead`, the ERP ingress, a crashing webhook intake, the actor runtime's sink), then the
`gateway dead-letters` command and a running gateway's admin API and metrics are asked about
them. The relay's real 312 NO_ROUTE is in test_unroutable.py.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import anyio
import httpx
import msgspec
import pytest
from delivery_receiver import deliveries_for
from gatewaykit import Partner, load, running, write_config

from actors.erp_ingress import ErpIngress, QueueBindings
from actors.routing import Router
from canonical import sample_body
from canonical.delivery import DeliveryAttempt
from gateway.cli import main
from gateway.partners import Partners, StoreDeadLetters
from gateway.store import DeadLetter, Store
from protocols.amqp.consumer import Inbound
from protocols.http.contract import WebhookRequest

NO_BROKER = "amqp://guest:guest@127.0.0.1:9/"
QUEUE = "gateway.erp"
ERP_TOML = """
[[erp.consumers]]
queue = "gateway.erp"
exchange = "erp.events"
bindings = {{ "purchase_order.released" = "purchase_order"{more} }}
"""


class Seeded:
    """A config and a store holding one dead letter from each source, each made for real."""

    def __init__(self, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.folder = folder
        self.acme = Partner("acme")
        self.config = self.write_config()
        self.store_path = folder / "gateway.db"
        self.po = sample_body("purchase_order", 7)
        self.monkeypatch = monkeypatch
        anyio.run(self._seed)

    def write_config(self, erp_bindings: str = "") -> Path:
        extra = ERP_TOML.format(more=erp_bindings)
        return write_config(self.folder, NO_BROKER, [self.acme], extra=extra)

    async def _seed(self) -> None:
        async with Store(self.store_path) as store:
            # A courier gave up on a delivery.
            await store.accept(deliveries_for("acme", ["PO-1"]))
            (delivery,) = await store.deliveries.deliveries(partner_id="acme")
            attempt = DeliveryAttempt(attempted_at=time.time(), status=500, latency_s=0.01)
            await store.deliveries.settle(delivery.id, attempt, "dead", reason="HTTP 500")
            # The relay could not route an outbox row.
            cfg = load(self.config)
            partners = Partners(cfg, store)
            await partners.accept(self.request(sample_body("purchase_order", 1), "wh-relay"))
            (row,) = await store.pending(10)
            await store.mark_dead(row.seq, "unroutable: 312 NO_ROUTE (routing key 'x')")
            # The ERP sent a routing key no binding names.
            erp = ErpIngress(
                store,
                Router([]),
                source="erp",
                queues={QUEUE: QueueBindings({"purchase_order.released": "purchase_order"})},
            )
            await erp.handle(self.erp_message(routing_key="po.unbound", message_id="erp-7"))
            # The webhook intake crashed on a document.
            with self.monkeypatch.context() as patch:
                patch.setattr("actors.partner.decode_document", _crash)
                with pytest.raises(RuntimeError):
                    await partners.accept(self.request(self.po, "wh-crash"))
            # An actor kept crashing on a message.
            await StoreDeadLetters(store).dead_letter(
                actor="po/PO-9", message="release PO-9", error=ValueError("no such PO")
            )

    def request(self, body: bytes, webhook_id: str) -> WebhookRequest:
        return WebhookRequest(
            partner_id="acme",
            document_type="purchase_order",
            body=body,
            webhook_id=webhook_id,
            timestamp=int(time.time()),
            idempotency_key=webhook_id,
            content_type="application/json",
            received_at=time.time(),
        )

    def erp_message(self, *, routing_key: str, message_id: str) -> Inbound:
        return Inbound(
            queue=QUEUE,
            exchange="erp.events",
            routing_key=routing_key,
            body=self.po,
            message_id=message_id,
            correlation_id="corr-erp-7",
            message_type=None,
            redelivered=False,
            received_at=time.time(),
        )

    def letters(self) -> list[DeadLetter]:
        async def read() -> list[DeadLetter]:
            async with Store(self.store_path) as store:
                return await store.dead_letters()

        return anyio.run(read)

    def outbox(self) -> list[tuple[str, str]]:
        """(state, partner_id) of every outbox row, in seq order."""
        with sqlite3.connect(self.store_path) as db:
            return db.execute("SELECT state, partner_id FROM outbox ORDER BY seq").fetchall()

    def letter(self, kind: str) -> DeadLetter:
        (found,) = [d for d in self.letters() if d.source.partition(":")[0] == kind]
        return found

    def cli(
        self, capsys: pytest.CaptureFixture[str], *args: str, config: Path | None = None
    ) -> tuple[int, str, str]:
        action, *rest = args
        code = main(["dead-letters", action, "--config", str(config or self.config), *rest])
        out, err = capsys.readouterr()
        return code, out, err


def _crash(document_type: str, body: bytes) -> object:
    raise RuntimeError("a bug in a codec")


@pytest.fixture
def seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Seeded:
    return Seeded(tmp_path, monkeypatch)


def test_list_shows_the_dead_letters_of_every_source(
    seeded: Seeded, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = seeded.cli(capsys, "list")

    sources = [line.split("\t")[2] for line in out.splitlines()]
    assert code == 0
    assert sources == ["delivery:acme", "relay", f"amqp:{QUEUE}", "intake:acme", "actor:po/PO-9"]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("relay", ["relay"]),
        ("amqp", [f"amqp:{QUEUE}"]),
        ("delivery:acme", ["delivery:acme"]),
        ("delivery:globex", []),
        ("intake", ["intake:acme"]),
    ],
)
def test_list_filters_by_source_or_its_kind(
    seeded: Seeded, capsys: pytest.CaptureFixture[str], source: str, expected: list[str]
) -> None:
    _, out, _ = seeded.cli(capsys, "list", "--source", source)

    assert [line.split("\t")[2] for line in out.splitlines()] == expected


def test_show_gives_a_relay_dead_letter_with_its_document_and_body(
    seeded: Seeded, capsys: pytest.CaptureFixture[str]
) -> None:
    letter = seeded.letter("relay")
    code, out, _ = seeded.cli(capsys, "show", str(letter.id))

    shown = msgspec.json.decode(out)
    assert code == 0
    assert (shown["source"], shown["document_type"]) == ("relay", "purchase_order")
    assert shown["reason"].startswith("unroutable: 312 NO_ROUTE")
    assert shown["body"]["message_id"] == letter.message_id


def test_replay_by_source_puts_the_relay_row_back_to_pending(
    seeded: Seeded, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = seeded.cli(capsys, "replay", "--source", "relay")

    assert code == 0
    assert out.strip() == "replayed 1 dead letter"
    assert seeded.outbox() == [("pending", "acme")]
    assert "relay" not in {d.source for d in seeded.letters()}


def test_an_erp_dead_letter_refused_again_stays_with_its_reason(
    seeded: Seeded, capsys: pytest.CaptureFixture[str]
) -> None:
    before = seeded.letter("amqp")
    code, out, _ = seeded.cli(capsys, "replay", str(before.id))

    after = seeded.letter("amqp")
    assert code == 0
    assert out.strip() == "replayed 0 dead letters, 1 refused again (see their reason)"
    assert after.id == before.id
    assert "po.unbound" in after.reason
    assert seeded.outbox() == [("dead", "acme")]


def test_an_erp_dead_letter_replays_once_its_binding_is_configured(
    seeded: Seeded, capsys: pytest.CaptureFixture[str]
) -> None:
    letter = seeded.letter("amqp")
    fixed = seeded.write_config(', "po.unbound" = "purchase_order"')

    code, out, _ = seeded.cli(capsys, "replay", "--source", "amqp", config=fixed)
    again, _, _ = seeded.cli(capsys, "replay", str(letter.id), config=fixed)

    assert code == 0
    assert out.strip() == "replayed 1 dead letter"
    assert again == 1  # gone: replayed once, not twice
    assert seeded.outbox() == [("dead", "acme"), ("pending", "erp")]
    assert f"amqp:{QUEUE}" not in {d.source for d in seeded.letters()}


def test_a_crashed_webhook_replays_through_its_intake_once(
    seeded: Seeded, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = seeded.cli(capsys, "replay", "--source", "intake")
    again, _, _ = seeded.cli(capsys, "replay", "--source", "intake")

    assert code == 0
    assert out.strip() == "replayed 1 dead letter"
    assert again == 0
    assert seeded.outbox() == [("dead", "acme"), ("pending", "acme")]
    assert "intake:acme" not in {d.source for d in seeded.letters()}


def test_an_actor_dead_letter_is_not_replayable_and_says_so(
    seeded: Seeded, capsys: pytest.CaptureFixture[str]
) -> None:
    letter = seeded.letter("actor")
    code, out, err = seeded.cli(capsys, "replay", str(letter.id))

    assert code == 1  # the thing asked for cannot be done (gateway/cli.py exit codes)
    assert out == ""
    assert "cannot be replayed" in err
    assert letter in seeded.letters()


@pytest.mark.anyio
async def test_metrics_and_the_admin_api_count_and_list_every_source(
    seeded: Seeded,
) -> None:
    async with running(load(seeded.config)) as gateway:
        admin = f"http://127.0.0.1:{gateway.admin_port}"
        async with httpx.AsyncClient(base_url=admin, timeout=10) as http:
            listed = (await http.get("/dead-letters")).json()["dead_letters"]
            actor = seeded_id(listed, "actor:po/PO-9")
            refused = await http.post("/dead-letters/replay", json={"id": actor})
            with anyio.fail_after(10):
                while 'gateway_dead_letters{source="relay"} 1.0' not in (
                    metrics := (await http.get("/metrics")).text
                ):
                    await anyio.sleep(0.05)

    assert [d["source"] for d in listed] == [
        "delivery:acme",
        "relay",
        f"amqp:{QUEUE}",
        "intake:acme",
        "actor:po/PO-9",
    ]
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("/not-replayable")
    for kind in ("delivery", "relay", "amqp", "intake", "actor"):
        assert f'gateway_dead_letters{{source="{kind}"}} 1.0' in metrics


def seeded_id(listed: list[dict[str, object]], source: str) -> int:
    (found,) = [d["id"] for d in listed if d["source"] == source]
    assert isinstance(found, int)
    return found
