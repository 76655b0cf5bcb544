"""Load the configuration file, reporting every problem by file, section or partner, and field."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from canonical.errors import ConfigError, FieldError
from gateway.config.base import Base
from gateway.config.erp import ErpSettings, subscription_problems
from gateway.config.partners import PARTNER_ID_PATTERN, PartnerConfig, known_document_types
from gateway.config.secrets import secret_hook
from gateway.config.settings import (
    AdminSettings,
    AmqpSettings,
    GatewayConfig,
    HttpSettings,
    LogSettings,
    RuntimeSettings,
    StoreSettings,
    join_host_port,
)
from gateway.config.tables import DecHook, Problem, build, did_you_mean, join
from gateway.config.workflow import WorkflowSettings, workflow_problems

__all__ = ["check_config", "load_config", "summarize"]

SECTIONS: Mapping[str, type[Base]] = {
    "http": HttpSettings,
    "admin": AdminSettings,
    "store": StoreSettings,
    "amqp": AmqpSettings,
    "runtime": RuntimeSettings,
    "log": LogSettings,
    "erp": ErpSettings,
    "workflow": WorkflowSettings,
}
# summarize() stays one line however many partners there are.
SUMMARY_PARTNER_IDS = 10

Report = Callable[[str, str, list[Problem]], None]

_TOML_AT = re.compile(r"^(?P<message>.*) \((?P<at>at line \d+, column \d+|at end of document)\)$")


def load_config(path: Path, environ: Mapping[str, str]) -> GatewayConfig:
    """Read, validate and resolve the configuration file at `path`.

    Secrets given as `{ env = ... }` are looked up in `environ` (the composition root passes
    `os.environ`), `{ file = ... }` relative to the file's folder. Raises ConfigError whose
    `errors` hold every problem found, one FieldError per problem, each message naming the file,
    the section or partner, and the field.
    """
    where = str(path)
    document = _read_toml(path, where)
    problems: list[FieldError] = []

    def report(base: str, label: str, found: list[Problem]) -> None:
        for field, message in found:
            text = f"{field}: {message}" if field else message
            problems.append(FieldError(_dollar(join(base, field)), f"{where}: {label}: {text}"))

    sections: dict[str, Any] = {}
    for key, table in document.items():
        if key == "partners":
            continue
        if key not in SECTIONS:
            hint = did_you_mean(key, [*SECTIONS, "partners"])
            report(key, f"[{key}]", [("", f"unknown section{hint}")])
            continue
        sections[key], found = build(SECTIONS[key], table, None)
        report(key, f"[{key}]", found)
    # A section with errors is None here; the checks that need it are skipped.
    http, admin = sections.get("http", HttpSettings()), sections.get("admin", AdminSettings())
    if http is not None and admin is not None and admin.port and _address(admin) == _address(http):
        address = join_host_port(http.host, http.port)
        report("admin", "[admin]", [("port", f"same address as [http] ({address})")])

    hook = secret_hook(environ, path.parent)
    partners = _load_partners(document.get("partners", []), http, hook, report)
    if sections.get("erp") is not None:
        report("erp", "[erp]", subscription_problems(sections["erp"], tuple(partners)))
    workflow, erp = sections.get("workflow"), sections.get("erp", ErpSettings())
    if workflow is not None and erp is not None:
        # Only a [workflow] written in the file is held to [erp]: by default the threads run
        # when the ERP's events are published and stay off (logged) when they are not.
        found = workflow_problems(workflow, tuple(partners), erp_publishes=erp.publish_events)
        report("workflow", "[workflow]", found)
    if problems:
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        raise ConfigError(f"{where}: {count}", errors=problems)
    return GatewayConfig(**sections, partners=tuple(partners))


def summarize(cfg: GatewayConfig) -> str:
    """Return one line saying what the configuration sets up, without any secret."""
    ids = [p.id for p in cfg.partners]
    shown = ", ".join(ids[:SUMMARY_PARTNER_IDS])
    if len(ids) > SUMMARY_PARTNER_IDS:
        shown += f", +{len(ids) - SUMMARY_PARTNER_IDS} more"
    partners = f"{len(ids)} partner{'s' if len(ids) != 1 else ''}" + (f" ({shown})" if ids else "")
    http = join_host_port(cfg.http.host, cfg.http.port)
    return f"{partners}, store {cfg.store.path}, amqp {cfg.amqp.address}, http {http}"


def check_config(path: Path, environ: Mapping[str, str]) -> tuple[int, list[str]]:
    """Return what `gateway config check` prints: (0, [summary]) or (1, one line per problem)."""
    try:
        cfg = load_config(path, environ)
    except ConfigError as exc:
        return 1, [error.message for error in exc.errors] or [exc.detail]
    return 0, [summarize(cfg)]


def _load_partners(
    entries: object, http: HttpSettings | None, hook: DecHook, report: Report
) -> list[PartnerConfig]:
    if not isinstance(entries, list):
        report("partners", "[[partners]]", [("", "expected an array of tables [[partners]]")])
        return []
    known = known_document_types()
    partners: list[PartnerConfig] = []
    first_index: dict[str, int] = {}  # partner id -> index of its first entry
    secret_owner: dict[bytes, tuple[str, int]] = {}  # HMAC key -> (partner label, secret index)
    for index, table in enumerate(entries):
        partner_id = _usable_id(table)
        label = f"partner {partner_id!r}" if partner_id else f"partners[{index}]"
        found: list[Problem] = []
        if partner_id is not None and first_index.setdefault(partner_id, index) != index:
            found.append(("id", f"duplicate of partners[{first_index[partner_id]}]"))
        if isinstance(table, dict):
            found += _unknown_documents(table, known)
            if http is not None and "max_body_bytes" not in table:
                table = {**table, "max_body_bytes": http.max_body_bytes}
        partner, more = build(PartnerConfig, table, hook)
        found += more
        if partner is not None:
            if http is not None and partner.max_body_bytes > http.max_body_bytes:
                ceiling = f"above [http] max_body_bytes ({http.max_body_bytes})"
                found.append(("max_body_bytes", ceiling))
            for i, secret in enumerate(partner.secrets):
                # One partner's secret in another's hands would let it sign as the other.
                owner, j = secret_owner.setdefault(secret.key, (label, i))
                if (owner, j) != (label, i):
                    same = f"secrets[{j}]" + ("" if owner == label else f" of {owner}")
                    found.append((f"secrets[{i}]", f"same secret as {same}"))
            partners.append(partner)
        report(f"partners[{index}]", label, found)
    return partners


def _usable_id(table: object) -> str | None:
    # A partner is named by its id when the id is valid, else by its position in the file.
    partner_id = table.get("id") if isinstance(table, dict) else None
    if isinstance(partner_id, str) and re.fullmatch(PARTNER_ID_PATTERN, partner_id):
        return partner_id
    return None


def _unknown_documents(table: dict[str, Any], known: frozenset[str]) -> list[Problem]:
    found: list[Problem] = []
    for direction in ("sends", "receives"):
        documents = table.get(direction)
        for i, document in enumerate(documents if isinstance(documents, list) else []):
            if isinstance(document, str) and document not in known:
                hint = did_you_mean(document, known)
                found.append((f"{direction}[{i}]", f"unknown document type {document!r}{hint}"))
    return found


def _read_toml(path: Path, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        message = f"cannot read: {exc.strerror}"
    except UnicodeDecodeError as exc:
        message = f"not UTF-8 (byte {exc.start})"
    except tomllib.TOMLDecodeError as exc:
        match = _TOML_AT.match(str(exc))
        message = f"{match['at']}: {match['message']}" if match else str(exc)
    raise ConfigError(f"{where}: {message}", errors=[FieldError("$", f"{where}: {message}")])


def _address(listener: HttpSettings | AdminSettings) -> tuple[str, int]:
    return listener.host, listener.port


def _dollar(path: str) -> str:
    return "$" + ("" if not path else path if path.startswith("[") else f".{path}")
