"""`gateway config check`: every problem in one run, and no config that cannot work gets through.

Also the broker URL as a secret reference, and the keys that were read nowhere, now refused.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import msgspec
import pytest

from canonical.errors import ConfigError
from gateway.config import check_config, load_config, summarize

REPO = Path(__file__).resolve().parents[1]
AMQP = '[amqp]\nurl = "amqp://gw:pw@127.0.0.1:5672/%2F"\n'
BROKER_URL = "amqp://gw:s3cret-pw@mq.internal:5671/prod"
# One problem line: `FILE[:LINE]: LABEL: [FIELD: ]MESSAGE`.
LINE = re.compile(r"^(?P<file>[^:]+?)(?::(?P<line>\d+))?: (?P<label>[^:]+): (?P<rest>.*)$")


def whsec() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode("ascii")


def partner(partner_id: str = "acme", extra: str = "", *, sends: str = '["invoice"]') -> str:
    return (
        f'[[partners]]\nid = "{partner_id}"\nname = "{partner_id}"\nsecrets = ["{whsec()}"]\n'
        f"sends = {sends}\n{extra}\n"
    )


def pull() -> str:
    return f'[partners.pull]\ntoken = "{whsec()}"\n'


def write(folder: Path, text: str) -> Path:
    path = folder / "gw.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path, environ: Mapping[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ or {})
    return [error.message for error in caught.value.errors]


def places(lines: list[str]) -> list[tuple[str, str]]:
    """Return (label, field or message start) of each problem line."""
    found = []
    for text in lines:
        match = LINE.match(text)
        assert match, text
        found.append((match["label"], match["rest"].split(": ")[0]))
    return found


# --- the broker URL is a secret reference --------------------------------------------------


@pytest.mark.parametrize("kind", ["inline", "env", "file"])
def test_the_broker_url_comes_inline_from_an_env_var_or_from_a_file(
    tmp_path: Path, kind: str
) -> None:
    (tmp_path / "amqp-url").write_text(BROKER_URL + "\n", encoding="utf-8")
    ref = {
        "inline": f'"{BROKER_URL}"',
        "env": '{ env = "GATEWAY_AMQP_URL" }',
        "file": '{ file = "amqp-url" }',
    }[kind]
    path = write(tmp_path, f"[amqp]\nurl = {ref}\n" + partner())

    cfg = load_config(path, {"GATEWAY_AMQP_URL": BROKER_URL})

    assert cfg.amqp.url.reveal() == BROKER_URL
    assert (
        cfg.amqp.url.source
        == {
            "inline": "inline",
            "env": "env:GATEWAY_AMQP_URL",
            "file": "file:amqp-url",
        }[kind]
    )
    assert cfg.amqp.address == "mq.internal:5671"


def test_a_partner_amqp_url_is_a_secret_reference_too(tmp_path: Path) -> None:
    outbound = '[partners.outbound_amqp]\nexchange = "acme.in"\nurl = { env = "ACME_MQ" }\n'
    path = write(tmp_path, AMQP + partner(extra='receives = ["purchase_order"]\n' + outbound))

    cfg = load_config(path, {"ACME_MQ": BROKER_URL})

    channel = cfg.partners[0].outbound_amqp
    assert channel is not None
    assert channel.url is not None
    assert channel.url.reveal() == BROKER_URL
    assert "s3cret-pw" not in repr(cfg)


@pytest.mark.parametrize(
    ("url", "environ", "fragment"),
    [
        ('{ env = "GATEWAY_AMQP_URL" }', {}, "environment variable GATEWAY_AMQP_URL is not set"),
        (
            '{ env = "GATEWAY_AMQP_URL" }',
            {"GATEWAY_AMQP_URL": "http://gw:s3cret-pw@mq.internal/"},
            "url: environment variable GATEWAY_AMQP_URL: expected amqp://",
        ),
        ('{ file = "absent" }', {}, "url: cannot read secret file absent"),
        ("42", {}, 'url: expected an amqp:// URL, { env = "NAME" } or { file = "PATH" }'),
    ],
    ids=["env-unset", "env-not-amqp", "file-missing", "not-a-string"],
)
def test_a_broker_url_reference_that_fails_is_named_and_never_echoed(
    tmp_path: Path, url: str, environ: dict[str, str], fragment: str
) -> None:
    path = write(tmp_path, f"[amqp]\nurl = {url}\n" + partner())

    [line] = problems(path, environ)

    assert line.startswith(f"{path}:2: [amqp]: ")
    assert fragment in line
    assert "s3cret-pw" not in line


def test_the_broker_password_is_absent_from_repr_summary_logs_and_encoders(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, '[amqp]\nurl = { env = "GATEWAY_AMQP_URL" }\n' + partner())
    cfg = load_config(path, {"GATEWAY_AMQP_URL": BROKER_URL})

    caplog.set_level("INFO")
    import logging

    logging.getLogger("gateway.test").info("config %s %r %s", cfg, cfg.amqp, cfg.amqp.url)
    shown = repr(cfg) + str(cfg.amqp.url) + summarize(cfg) + caplog.text

    assert "s3cret-pw" not in shown
    assert "amqp://gw:***@mq.internal:5671/prod" in repr(cfg)
    with pytest.raises(TypeError):
        msgspec.json.encode(cfg.amqp)


# --- no silent defaults, no dead keys ----------------------------------------------------


def test_a_config_without_an_amqp_section_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, partner())

    [line] = problems(path)

    assert line.startswith(f"{path}: [amqp]: missing section")
    assert "url" in line


def test_a_config_without_partners_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, AMQP)

    [line] = problems(path)

    assert line == f"{path}: [[partners]]: no partners: the gateway would accept nothing"


@pytest.mark.parametrize(
    ("text", "where", "fragment"),
    [
        (
            AMQP + "prefetch_count = 256\n" + partner(),
            "[amqp]: prefetch_count: ",
            "removed: it was read nowhere; each [[erp.consumers]] has its own prefetch",
        ),
        (
            AMQP + '[log]\nformat = "json"\n' + partner(),
            "[log]: format: ",
            "removed: log lines are always JSON",
        ),
        (
            AMQP + partner(extra='format = "json"'),
            "partner 'acme': format: ",
            "removed: partner documents are always JSON",
        ),
    ],
    ids=["amqp-prefetch_count", "log-format", "partner-format"],
)
def test_keys_that_were_read_nowhere_are_refused_with_what_to_do(
    tmp_path: Path, text: str, where: str, fragment: str
) -> None:
    path = write(tmp_path, text)

    [line] = problems(path)

    assert re.sub(r"^[^:]+:\d+: ", "", line).startswith(where + fragment)


# --- configs that cannot work ------------------------------------------------------------

CONSUMER = '[[erp.consumers]]\nqueue = "gw.erp"\nbindings = { "po.released" = "purchase_order" }\n'
SUBSCRIPTION = '[[erp.subscriptions]]\npartner = "acme"\ndocument = "purchase_order"\n'
RECEIVES = 'receives = ["purchase_order"]\n'

CANNOT_WORK = [
    # (case id, file text, label, field, message fragment)
    ("subscriber-without-channel", AMQP + CONSUMER + SUBSCRIPTION + partner(extra=RECEIVES),
     "[erp]", "subscriptions[0].partner",
     "partner 'acme' has no outbound, outbound_amqp or pull table: its messages would wait"),
    ("partner-that-does-nothing", AMQP + partner(sends="[]") + partner("globex"),
     "partner 'acme'", "sends",
     "no outbound, outbound_amqp or pull table: it can neither send nor receive"),
    ("receiver-without-documents", AMQP + partner(sends="[]", extra=pull()),
     "partner 'acme'", "sends", "and so is receives: it can neither send nor receive"),
    ("duplicate-queue", AMQP + CONSUMER + CONSUMER + partner(), "[erp]", "consumers[1].queue",
     "same queue as consumers[0]"),
    ("queue-is-parking-lot",
     AMQP + CONSUMER.replace("gw.erp", "gateway.parking-lot") + partner(),
     "[erp]", "consumers[0].queue", "the gateway's parking lot"),
    ("consumer-on-own-events",
     AMQP + CONSUMER + 'exchange = "gateway.events"\n' + partner(),
     "[erp]", "consumers[0].exchange", "the gateway's own events exchange"),
    ("consumer-on-dead-letters",
     AMQP + CONSUMER + 'exchange = "gateway.dlx"\n' + partner(),
     "[erp]", "consumers[0].exchange", "the dead-letter exchange"),
    ("events-are-dead-letters", AMQP + 'dead_letter_exchange = "gateway.events"\n' + partner(),
     "[amqp]", "dead_letter_exchange", "same as events_exchange"),
    ("partner-exchange-is-own-events",
     AMQP + partner(extra=RECEIVES + '[partners.outbound_amqp]\nexchange = "gateway.events"\n'),
     "partner 'acme'", "outbound_amqp.exchange", "the gateway's own events exchange"),
    ("reconnect-backwards",
     AMQP + "reconnect_min_s = 60.0\nreconnect_max_s = 1.0\n" + partner(),
     "[amqp]", "reconnect_min_s", "greater than reconnect_max_s (1.0)"),
    ("listeners-same-port-wildcard", AMQP + '[http]\nhost = "0.0.0.0"\n[admin]\nport = 8080\n'
     + partner(), "[admin]", "port", "clashes with [http] (0.0.0.0:8080)"),
    ("listeners-same-port-localhost", AMQP + '[admin]\nhost = "localhost"\nport = 8080\n'
     + partner(), "[admin]", "port", "clashes with [http] (127.0.0.1:8080)"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "label", "field", "fragment"),
    [case[1:] for case in CANNOT_WORK],
    ids=[case[0] for case in CANNOT_WORK],
)
def test_a_config_that_cannot_work_is_refused(
    tmp_path: Path, text: str, label: str, field: str, fragment: str
) -> None:
    lines = problems(write(tmp_path, text))

    assert places(lines) == [(label, field)], lines
    assert fragment in lines[0]


def test_listeners_on_port_zero_or_apart_load(tmp_path: Path) -> None:
    # Off loopback the admin listener needs its token (tests/test_admin_guard.py).
    token = 'token = "whsec_YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE="\n'
    both_free = '[http]\nport = 0\n[admin]\nport = 0\nhost = "0.0.0.0"\n' + token
    apart = '[http]\nhost = "10.0.0.1"\n[admin]\nhost = "10.0.0.2"\nport = 8080\n' + token

    for text in (both_free, apart):
        assert load_config(write(tmp_path, AMQP + text + partner()), {})


def test_a_receive_only_partner_with_a_channel_loads(tmp_path: Path) -> None:
    receiver = partner(sends="[]", extra=RECEIVES + pull())
    path = write(tmp_path, AMQP + CONSUMER + SUBSCRIPTION + receiver)

    [acme] = load_config(path, {}).partners

    assert acme.pull is not None
    assert acme.sends == frozenset()


# --- every problem in one run ------------------------------------------------------------


def test_a_missing_partner_secret_does_not_make_its_subscription_unknown(tmp_path: Path) -> None:
    text = (
        AMQP
        + CONSUMER
        + SUBSCRIPTION
        + '[[partners]]\nid = "acme"\nname = "Acme"\nsecrets = [{ env = "ACME_SECRET" }]\n'
        + RECEIVES
        + pull()
    )
    path = write(tmp_path, text)

    lines = problems(path)

    assert places(lines) == [("partner 'acme'", "secrets[0]")], lines


BROKEN = f"""\
[http]
host = "0.0.0.0"
max_body_bytes = 10

[admin]
port = 8080

[amqp]
url = {{ env = "GATEWAY_AMQP_URL" }}
reconnect_min_s = 60.0
reconnect_max_s = 1.0
prefetch_count = 10

[[erp.consumers]]
queue = "gateway.erp"
prefetch = 0
bindings = {{ "po.released" = "purchase_ordr" }}

[[erp.consumers]]
queue = "gateway.erp"
exchange = "gateway.events"
bindings = {{ "po.released" = "purchase_order" }}

[[erp.subscriptions]]
partner = "acme"
document = "purchase_order"

[[erp.subscriptions]]
partner = "initech"
document = "purchase_order"

[[partners]]
id = "acme"
name = "Acme"
secrets = [{{ env = "ACME_SECRET" }}]
sends = ["invoice"]
receives = ["purchase_order"]
colour = "red"

[[partners]]
id = "globex"
name = "Globex"
secrets = ["{whsec()}"]
sends = ["invoice"]
[partners.pull]
token = "not a secret"
[partners.outbound_amqp]
exchange = "globex.in"
"""


def test_every_problem_of_a_broken_file_is_listed_in_one_run_in_file_order(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, BROKEN)

    lines = problems(path)

    assert [(m["line"], m["label"], m["rest"].split(": ")[0]) for m in map(LINE.match, lines)] == [
        ("3", "[http]", "max_body_bytes"),  # decode
        ("6", "[admin]", "port"),  # cross-section, beside a broken [http]
        ("9", "[amqp]", "url"),  # secret
        ("10", "[amqp]", "reconnect_min_s"),  # cross-field, beside a broken url
        ("12", "[amqp]", "prefetch_count"),  # dead key
        ("16", "[erp]", "consumers[0].prefetch"),  # decode
        ("17", "[erp]", "consumers[0].bindings"),  # per field, beside a broken prefetch
        ("20", "[erp]", "consumers[1].queue"),  # duplicate, beside a broken consumers[0]
        ("21", "[erp]", "consumers[1].exchange"),  # cross-section
        ("25", "[erp]", "subscriptions[0].partner"),  # acme has no channel, yet is known
        ("29", "[erp]", "subscriptions[1].partner"),  # initech is unknown
        ("35", "partner 'acme'", "secrets[0]"),  # secret
        ("38", "partner 'acme'", "colour"),  # unknown key
        ("45", "partner 'globex'", "pull"),  # cross-field, beside a broken pull token
        ("46", "partner 'globex'", "pull.token"),  # secret
    ], lines
    assert not [line for line in lines if "unknown partner" in line and "'acme'" in line]


def test_config_check_on_the_command_line_prints_every_problem_on_stderr_and_exits_1(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, BROKEN)
    environ = {k: v for k, v in os.environ.items() if k not in ("ACME_SECRET", "GATEWAY_AMQP_URL")}

    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "config", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**environ, "PYTHONPATH": str(REPO)},
        cwd=tmp_path,
        check=False,
    )

    assert (done.returncode, done.stdout) == (1, "")
    printed = done.stderr.splitlines()
    assert printed == check_config(path, environ)[1]
    assert len(printed) == 15
    assert all(line.startswith(f"{path}:") for line in printed)


def test_config_check_on_the_command_line_prints_the_summary_and_exits_0(tmp_path: Path) -> None:
    path = write(tmp_path, '[amqp]\nurl = { env = "GATEWAY_AMQP_URL" }\n' + partner())

    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "config", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO), "GATEWAY_AMQP_URL": BROKER_URL},
        check=False,
    )

    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("1 partner (acme), store var/gateway.db, amqp mq.internal:5671,")
