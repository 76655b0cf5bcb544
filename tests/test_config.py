"""The configuration file: typed defaults, every problem reported by name, secrets never shown."""

from __future__ import annotations

import base64
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path

import msgspec
import pytest

from canonical.errors import ConfigError
from gateway.config import Secret, check_config, load_config, summarize

DEMO = Path(__file__).resolve().parents[1] / "gateway" / "examples" / "demo.toml"


def whsec(n_bytes: int = 32) -> str:
    return "whsec_" + base64.b64encode(os.urandom(n_bytes)).decode("ascii")


SECRET_A, SECRET_B, SECRET_C = whsec(), whsec(), whsec()
AMQP = '[amqp]\nurl = "amqp://gw:pw@127.0.0.1:5672/%2F"\n'


def partner(
    partner_id: str = "acme",
    *,
    secrets: str | None = None,
    sends: str = '["invoice"]',
    extra: str = "",
) -> str:
    """Return one [[partners]] table; `secrets` and `sends` are TOML values, `extra` more lines."""
    value = secrets if secrets is not None else f'["{whsec()}"]'
    return (
        f'[[partners]]\nid = "{partner_id}"\nname = "{partner_id} corp"\n'
        f'secrets = {value}\nsends = {sends}\nreceives = ["purchase_order"]\n{extra}\n'
    )


def write(folder: Path, text: str, name: str = "gw.toml") -> Path:
    """Write `text` with an [amqp] section first unless it has its own."""
    path = folder / name
    path.write_text(text if "[amqp]" in text else AMQP + text, encoding="utf-8")
    return path


def unlocated(path: Path, line: str) -> str:
    """Return a problem line without its `FILE:LINE: ` prefix."""
    return re.sub(rf"^{re.escape(str(path))}(:\d+)*: ", "", line)


def errors_of(path: Path, environ: Mapping[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ or {})
    return [error.message for error in caught.value.errors]


# --- loading --------------------------------------------------------------------------------


def test_example_config_loads_with_both_partners() -> None:
    cfg = load_config(DEMO, {})

    assert summarize(cfg) == (
        "2 partners (acme, globex), store var/gateway.db, amqp 127.0.0.1:5672, http 127.0.0.1:8080"
    )
    globex = cfg.partner("globex")
    assert globex is not None
    assert len(globex.secrets) == 2
    assert "goods_receipt" in globex.sends
    assert (cfg.admin.host, cfg.admin.port) == ("127.0.0.1", 9090)


def test_omitted_sections_take_their_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, partner("acme")), {})

    assert (cfg.http.host, cfg.http.port, cfg.http.max_body_bytes) == ("127.0.0.1", 8080, 1 << 20)
    assert (cfg.admin.port, cfg.store.path, cfg.store.synchronous) == (
        9090,
        "var/gateway.db",
        "FULL",
    )
    assert (cfg.store.max_batch, cfg.store.idempotency_retention_s) == (512, 7 * 24 * 3600)
    assert cfg.amqp.events_exchange == "gateway.events"
    assert cfg.amqp.dead_letter_exchange == "gateway.dlx"
    assert (cfg.runtime.mailbox_size, cfg.runtime.poison_threshold) == (1024, 3)
    acme = cfg.partner("acme")
    assert acme is not None
    assert acme.max_body_bytes == 1 << 20


def test_partner_body_limit_defaults_to_the_http_ceiling(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "[http]\nmax_body_bytes = 4096\n" + partner("acme")), {})

    acme = cfg.partner("acme")
    assert acme is not None
    assert acme.max_body_bytes == 4096


def test_partner_lookup_answers_none_for_an_unknown_id() -> None:
    cfg = load_config(DEMO, {})

    acme = cfg.partner("acme")
    assert acme is not None
    assert acme.name == "Acme Supplies Ltd"
    assert cfg.partner("initech") is None


def test_loaded_config_cannot_be_changed() -> None:
    cfg = load_config(DEMO, {})

    with pytest.raises(AttributeError):
        cfg.http.port = 1  # type: ignore[misc]


@pytest.mark.parametrize("kind", ["env", "file"])
def test_secret_references_resolve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    # The file path is relative to the config's folder, not to the working directory.
    folder = tmp_path / "conf"
    (folder / "secrets").mkdir(parents=True)
    (folder / "secrets" / "acme").write_text(SECRET_A + "\n", encoding="utf-8")
    ref = '{ env = "ACME_SECRET" }' if kind == "env" else '{ file = "secrets/acme" }'
    path = write(folder, partner("acme", secrets=f"[{ref}]"))
    monkeypatch.chdir(tmp_path)

    cfg = load_config(path, {"ACME_SECRET": SECRET_A})

    acme = cfg.partner("acme")
    assert acme is not None
    (secret,) = acme.secrets
    assert secret.reveal() == SECRET_A
    assert secret.key == base64.b64decode(SECRET_A.removeprefix("whsec_"))
    assert secret.source == ("env:ACME_SECRET" if kind == "env" else "file:secrets/acme")


@pytest.mark.parametrize("n_bytes", [24, 64])
def test_secret_of_24_to_64_bytes_is_accepted(n_bytes: int) -> None:
    assert len(Secret(whsec(n_bytes)).key) == n_bytes


@pytest.mark.parametrize(
    "text",
    [whsec(23), whsec(65), "whsec_not base64!", SECRET_A.removeprefix("whsec_"), ""],
    ids=["23-bytes", "65-bytes", "not-base64", "no-prefix", "empty"],
)
def test_malformed_secret_is_refused_without_echoing_it(text: str) -> None:
    with pytest.raises(ValueError, match="not a whsec_ secret") as caught:
        Secret(text)
    assert not text or text not in str(caught.value)


# --- every problem, named by file, partner or section, and field ----------------------------

ERROR_CASES = [
    # (case id, file text, environ, expected message prefix after the file name, fragment)
    ("missing-field", f'[[partners]]\nid = "acme"\nsecrets = ["{SECRET_A}"]\n', {},
     "partner 'acme': name: ", "missing required field"),
    ("unknown-key", partner("acme", extra='colour = "red"'), {},
     "partner 'acme': colour: ", "unknown key"),
    ("unknown-nested-key", partner("acme", extra="rate_limit = { per_second = 5, brust = 9 }"), {},
     "partner 'acme': rate_limit.brust: ", "did you mean 'burst'"),
    ("bad-secret", partner("acme", secrets='["whsec_c2hvcnQ="]'), {},
     "partner 'acme': secrets[0]: ", "not a whsec_ secret (base64 of 24-64 bytes)"),
    ("three-secrets", partner("acme", secrets=f'["{SECRET_A}", "{SECRET_B}", "{SECRET_C}"]'), {},
     "partner 'acme': secrets: ", "length <= 2"),
    ("no-secret", partner("acme", secrets="[]"), {},
     "partner 'acme': secrets: ", "length >= 1"),
    ("missing-env", partner("acme", secrets='[{ env = "ACME_SECRET" }]'), {},
     "partner 'acme': secrets[0]: ", "environment variable ACME_SECRET is not set"),
    ("bad-env", partner("acme", secrets='[{ env = "ACME_SECRET" }]'), {"ACME_SECRET": "hunter2"},
     "partner 'acme': secrets[0]: ", "ACME_SECRET: not a whsec_ secret"),
    ("missing-file", partner("acme", secrets='[{ file = "secrets/acme" }]'), {},
     "partner 'acme': secrets[0]: ", "cannot read secret file secrets/acme"),
    ("bad-ref", partner("acme", secrets='[{ env = "A", file = "b" }]'), {},
     "partner 'acme': secrets[0]: ", "exactly one of"),
    ("same-secret-twice", partner("acme", secrets=f'["{SECRET_A}", "{SECRET_A}"]'), {},
     "partner 'acme': secrets[1]: ", "same secret as secrets[0]"),
    ("secret-shared", partner("acme", secrets=f'["{SECRET_A}"]')
     + partner("globex", secrets=f'["{SECRET_A}"]'), {},
     "partner 'globex': secrets[0]: ", "same secret as secrets[0] of partner 'acme'"),
    ("duplicate-partner", partner("acme") + partner("acme"), {},
     "partner 'acme': id: ", "duplicate of partners[0]"),
    ("unknown-document", partner("acme", sends='["invoice", "purchase_ordr"]'), {},
     "partner 'acme': sends: ", "unknown document type 'purchase_ordr'"),
    ("bad-id-named-by-index", partner("Acme Corp"), {},
     "partners[0]: id: ", "Expected `str` matching regex"),
    ("unknown-format", partner("acme", extra='format = "x12"'), {},
     "partner 'acme': format: ", "removed: partner documents are always JSON"),
    ("bad-rate", partner("acme", extra="rate_limit = { per_second = 0.0 }"), {},
     "partner 'acme': rate_limit.per_second: ", "> 0.0"),
    ("body-above-ceiling", partner("acme", extra="max_body_bytes = 2097152"), {},
     "partner 'acme': max_body_bytes: ", "above [http] max_body_bytes (1048576)"),
    ("bad-port", "[http]\nport = 70000\n", {}, "[http]: port: ", "<= 65535"),
    ("bad-synchronous", '[store]\nsynchronous = "OFF"\n', {},
     "[store]: synchronous: ", "expected one of 'FULL', 'NORMAL'"),
    ("unknown-section", "[htpp]\nport = 1\n", {}, "[htpp]: ", "did you mean 'http'"),
    ("bad-amqp-url", '[amqp]\nurl = "http://127.0.0.1"\n', {}, "[amqp]: url: ", "amqp://"),
    ("bad-backoff", "[amqp]\nreconnect_min_s = 60.0\nreconnect_max_s = 1.0\n", {},
     "[amqp]: reconnect_min_s: ", "greater than reconnect_max_s"),
    ("listeners-clash", "[admin]\nport = 8080\n", {},
     "[admin]: port: ", "clashes with [http] (127.0.0.1:8080)"),
    ("toml-syntax", "[http]\nport = 80\nhost = \n", {}, "Invalid value", "Invalid value"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "environ", "where", "fragment"),
    [case[1:] for case in ERROR_CASES],
    ids=[case[0] for case in ERROR_CASES],
)
def test_each_problem_names_file_place_and_field(
    tmp_path: Path, text: str, environ: dict[str, str], where: str, fragment: str
) -> None:
    path = write(tmp_path, text, "partners.toml")
    lines = errors_of(path, environ)

    matching = [line for line in lines if unlocated(path, line).startswith(where)]
    assert len(matching) == 1, lines
    assert fragment in matching[0]


def test_each_problem_names_its_line_and_a_syntax_error_its_column(tmp_path: Path) -> None:
    broken = write(tmp_path, "[http]\nport = 80\nhost = \n", "syntax.toml")
    invalid = write(tmp_path, partner("acme", extra="max_body_bytes = 12"), "invalid.toml")

    assert errors_of(broken) == [f"{broken}:5:8: Invalid value"]
    assert errors_of(invalid) == [
        f"{invalid}:9: partner 'acme': max_body_bytes: Expected `int` >= 1024"
    ]


def test_errors_of_every_partner_are_reported_together(tmp_path: Path) -> None:
    text = (
        partner("acme", secrets='["whsec_c2hvcnQ="]', extra='colour = "red"')
        + partner("globex", secrets='[{ env = "GLOBEX_SECRET" }]')
        + f'[[partners]]\nname = "no id"\nsecrets = ["{SECRET_C}"]\nsends = ["invoice"]\n'
        + "[runtime]\nmailbox_size = 0\n"
    )

    lines = errors_of(write(tmp_path, text))

    assert [line.split(": ")[1:3] for line in lines] == [
        ["partner 'acme'", "secrets[0]"],
        ["partner 'acme'", "colour"],
        ["partner 'globex'", "secrets[0]"],
        ["partners[2]", "id"],
        ["[runtime]", "mailbox_size"],
    ]


def test_error_paths_point_into_the_document(tmp_path: Path) -> None:
    path = write(tmp_path, "[http]\nport = -1\n" + partner("acme") + partner("b", secrets="[1]"))

    with pytest.raises(ConfigError) as caught:
        load_config(path, {})

    assert [error.path for error in caught.value.errors] == [
        "$.http.port",
        "$.partners[1].secrets[0]",
    ]


# --- secrets never shown ----------------------------------------------------------------------


def test_secrets_are_absent_from_repr_str_and_summary() -> None:
    cfg = load_config(DEMO, {})
    texts = [s.reveal() for p in cfg.partners for s in p.secrets]

    shown = " ".join([repr(cfg), str(cfg), summarize(cfg), *(f"{p}" for p in cfg.partners)])

    assert len(texts) == 3
    assert not [text for text in texts if text in shown]
    assert "Secret('whsec_…', source='inline')" in shown


def test_secrets_refuse_to_be_encoded() -> None:
    cfg = load_config(DEMO, {})

    for encode in (msgspec.to_builtins, msgspec.json.encode):
        with pytest.raises(TypeError, match=r"(Secret|AmqpUrl) is unsupported"):
            encode(cfg)
        with pytest.raises(TypeError, match="Secret is unsupported"):
            encode(cfg.partners)


def test_secrets_are_absent_from_errors_and_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    too_short = whsec(16)
    text = partner("acme", secrets=f'["{SECRET_A}", "{too_short}"]') + partner(
        "globex", secrets='[{ env = "GLOBEX" }]', extra='colour = "red"'
    )
    log = logging.getLogger("gateway.test")

    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), {"GLOBEX": SECRET_B})
    log.error("config rejected: %s", caught.value.errors, exc_info=caught.value)
    log.error("loaded %s / %r", load_config(DEMO, {}), load_config(DEMO, {}))

    shown = caplog.text + str(caught.value) + " ".join(e.message for e in caught.value.errors)
    assert len(caught.value.errors) == 2  # acme's short secret, globex's unknown key
    for secret in (SECRET_A, SECRET_B, too_short, *_demo_secrets()):
        assert secret.removeprefix("whsec_") not in shown


def test_amqp_password_is_absent_from_repr_and_summary(tmp_path: Path) -> None:
    amqp = '[amqp]\nurl = "amqp://gw:s3cret-pw@mq.internal:5671/prod"\n'
    path = write(tmp_path, amqp + partner("acme"))

    cfg = load_config(path, {})

    assert "s3cret-pw" not in repr(cfg) + summarize(cfg)
    assert "amqp://gw:***@mq.internal:5671/prod" in repr(cfg)
    assert "amqp mq.internal:5671" in summarize(cfg)


def _demo_secrets() -> list[str]:
    return [s.reveal() for p in load_config(DEMO, {}).partners for s in p.secrets]


# --- gateway config check ---------------------------------------------------------------------


def test_check_config_prints_the_summary_and_exits_zero() -> None:
    assert check_config(DEMO, {}) == (0, [summarize(load_config(DEMO, {}))])


def test_check_config_prints_one_line_per_problem_and_exits_one(tmp_path: Path) -> None:
    path = write(tmp_path, partner("acme", extra='colour = "red"') + "[log]\nlevel = 'LOUD'\n")

    code, lines = check_config(path, {})

    assert code == 1
    assert len(lines) == 2
    assert all(line.startswith(f"{path}:") for line in lines)


def test_check_config_reports_a_missing_file(tmp_path: Path) -> None:
    assert check_config(tmp_path / "absent.toml", {}) == (
        1,
        [f"{tmp_path}/absent.toml: cannot read: No such file or directory"],
    )
