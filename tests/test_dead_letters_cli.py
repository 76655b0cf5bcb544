"""`gateway dead-letters list|show|replay` on a store file, with no gateway running."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from delivery_receiver import Receiver, answering, deliveries_for, outbound_toml, serving
from gatewaykit import Partner, load, running, write_config

from canonical.delivery import DeliveryAttempt, DeliveryRecord
from gateway.cli import main
from gateway.store import DeadLetter, Store

NO_BROKER = "amqp://guest:guest@127.0.0.1:9/"


class Dead:
    """A config file whose store holds dead deliveries for acme (purchase orders, 2) and globex."""

    def __init__(self, folder: Path) -> None:
        self.config = write_config(folder, NO_BROKER, [Partner("acme"), Partner("globex")])
        self.store_path = folder / "gateway.db"
        self.acme: list[DeliveryRecord] = []
        self.globex: list[DeliveryRecord] = []
        # The dead letters of acme's and globex's deliveries, in the same order.
        self.acme_letters: list[DeadLetter] = []
        self.globex_letters: list[DeadLetter] = []
        anyio.run(self._seed)

    async def _seed(self) -> None:
        async with Store(self.store_path) as store:
            for partner, aggregates in (("acme", ["PO-1", "PO-2"]), ("globex", ["PO-7"])):
                await store.accept(deliveries_for(partner, aggregates))
                for delivery in await store.deliveries.deliveries(partner_id=partner):
                    attempt = DeliveryAttempt(
                        attempted_at=delivery.created_at, status=500, latency_s=0.01
                    )
                    await store.deliveries.settle(
                        delivery.id, attempt, "dead", reason="HTTP 500 (retries spent)"
                    )
            self.acme = await store.deliveries.deliveries(partner_id="acme")
            self.globex = await store.deliveries.deliveries(partner_id="globex")
            self.acme_letters = await store.dead_letters(partner_id="acme")
            self.globex_letters = await store.dead_letters(partner_id="globex")

    def letters(self) -> list[DeadLetter]:
        """The dead letters left in the store."""

        async def read() -> list[DeadLetter]:
            async with Store(self.store_path) as store:
                return await store.dead_letters()

        return anyio.run(read)

    def states(self) -> dict[int, tuple[str, str]]:
        """Every delivery's (state, message id), by id."""

        async def read() -> dict[int, tuple[str, str]]:
            async with Store(self.store_path) as store:
                return {d.id: (d.state, d.message_id) for d in await store.deliveries.deliveries()}

        return anyio.run(read)

    def cli(self, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
        action, *rest = args
        code = main(["dead-letters", action, "--config", str(self.config), *rest])
        out, err = capsys.readouterr()
        return code, out, err


@pytest.fixture
def dead(tmp_path: Path) -> Dead:
    return Dead(tmp_path)


def test_list_prints_one_line_per_dead_letter(
    dead: Dead, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = dead.cli(capsys, "list")

    lines = out.splitlines()
    assert code == 0
    assert [line.split("\t")[0] for line in lines] == [
        str(d.id) for d in dead.acme_letters + dead.globex_letters
    ]
    assert lines[0].split("\t")[2:5] == ["delivery:acme", "acme", "purchase_order"]
    assert dead.acme[0].message_id in lines[0]
    assert "HTTP 500 (retries spent)" in lines[0]


def test_list_filters_by_partner_and_time(dead: Dead, capsys: pytest.CaptureFixture[str]) -> None:
    _, by_partner, _ = dead.cli(capsys, "list", "--partner", "globex")
    _, in_future, _ = dead.cli(capsys, "list", "--since", "2999-01-01T00:00:00")
    _, in_past, _ = dead.cli(capsys, "list", "--until", "2000-01-01T00:00:00+00:00")

    assert [line.split("\t")[0] for line in by_partner.splitlines()] == [
        str(dead.globex_letters[0].id)
    ]
    assert in_future == ""
    assert in_past == ""


def test_show_prints_the_dead_letter_as_json_with_its_attempts(
    dead: Dead, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = dead.cli(capsys, "show", str(dead.acme_letters[1].id))

    shown = json.loads(out)
    assert code == 0
    assert shown["message_id"] == dead.acme[1].message_id
    assert (shown["source"], shown["document_type"]) == ("delivery:acme", "purchase_order")
    assert shown["body"]["aggregate"] == "PO-2"
    assert [a["status"] for a in shown["detail"]["attempts"]] == [500]


def test_show_of_an_id_that_is_not_dead_exits_1(
    dead: Dead, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = dead.cli(capsys, "show", "999")

    assert code == 1
    assert out == ""
    assert "no dead letter 999" in err


def test_replay_by_id_makes_that_delivery_pending_with_the_same_message_id(
    dead: Dead, capsys: pytest.CaptureFixture[str]
) -> None:
    target = dead.acme[0]
    code, out, _ = dead.cli(capsys, "replay", str(dead.acme_letters[0].id))

    states = dead.states()
    assert code == 0
    assert out.strip() == "replayed 1 dead letter"
    assert states[target.id] == ("pending", target.message_id)
    assert states[dead.acme[1].id][0] == "dead"
    assert dead.acme_letters[0].id not in {d.id for d in dead.letters()}


def test_replay_by_filters_replays_every_match(
    dead: Dead, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = dead.cli(capsys, "replay", "--partner", "acme", "--document", "purchase_order")

    states = dead.states()
    assert code == 0
    assert out.strip() == "replayed 2 dead letters"
    assert {states[d.id][0] for d in dead.acme} == {"pending"}
    assert states[dead.globex[0].id][0] == "dead"
    assert [d.id for d in dead.letters()] == [dead.globex_letters[0].id]


def test_replay_without_id_or_filter_is_refused(
    dead: Dead, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = dead.cli(capsys, "replay")

    assert code == 2
    assert out == ""
    assert "at least one filter" in err
    assert {state for state, _ in dead.states().values()} == {"dead"}


def test_an_unreadable_time_is_refused(dead: Dead, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = dead.cli(capsys, "list", "--since", "yesterday")

    assert code == 2
    assert "--since" in err


@pytest.mark.anyio
async def test_a_running_gateway_delivers_what_the_cli_replayed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    receiver = Receiver(answering(then=(500, {}, b"boom")))
    async with serving(receiver) as url:
        toml = outbound_toml(url, receiver.secret, (0.05,))
        config = write_config(tmp_path, NO_BROKER, [Partner("acme")], partner_extra=toml)
        async with running(load(config)) as gateway:
            assert gateway.store is not None
            await gateway.store.accept(deliveries_for("acme", ["PO-1"]))
            with anyio.fail_after(15):
                while not await gateway.store.deliveries.dead(partner_id="acme"):
                    await anyio.sleep(0.02)
            (dead,) = await gateway.store.deliveries.dead(partner_id="acme")
            (letter,) = await gateway.store.dead_letters(partner_id="acme")
            receiver.script = answering()
            # Another process's replay: nothing wakes the couriers but their idle wait.
            argv = ["dead-letters", "replay", "--config", str(config), str(letter.id)]
            assert await anyio.to_thread.run_sync(main, argv) == 0
            with anyio.fail_after(15):
                while receiver.delivered() != [dead.message_id]:
                    await anyio.sleep(0.02)
