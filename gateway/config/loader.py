"""Load the configuration file, reporting every problem in one run: file, line, place and field.

TOML syntax aside (the parser stops at the first), one run finds every problem: each field is
converted on its own (tables.py), and every rule runs on what did convert (base.py, rules.py).
A problem reads `FILE:LINE: PLACE: FIELD: MESSAGE`, PLACE being `[section]`, `partner 'id'` (or
`partners[i]` when the id itself is wrong) or `[[partners]]`; the lines come in file order.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from canonical.errors import ConfigError, FieldError
from gateway.config.base import MIB, BodyBytes, Problem, join_host_port
from gateway.config.lines import TomlLines
from gateway.config.partners import PARTNER_ID_PATTERN
from gateway.config.secrets import secret_hook
from gateway.config.settings import GatewayConfig
from gateway.config.tables import build

__all__ = ["check_config", "load_config", "summarize"]

# summarize() stays one line however many partners there are.
SUMMARY_PARTNER_IDS = 10
# What a missing required section needs, said where it is missing.
SECTION_HINTS: Mapping[str, str] = {
    "amqp": (
        'the broker has no default; add [amqp] with url = "amqp://...",'
        ' { env = "VAR" } or { file = "path" }'
    ),
}

_TOML_AT = re.compile(r"^(?P<message>.*) \(at line (?P<line>\d+), column (?P<column>\d+)\)$")


def load_config(
    path: Path, environ: Mapping[str, str], *, resolve_secrets: bool = True
) -> GatewayConfig:
    """Read, validate and resolve the configuration file at `path`.

    Secrets and broker URLs given as `{ env = ... }` are looked up in `environ` (the composition
    root passes `os.environ`), `{ file = ... }` relative to the file's folder; with
    `resolve_secrets` false they are not (random stand-ins: for operator commands that use no
    secret, run where the secrets are not). Raises ConfigError
    whose `errors` hold every problem found, one FieldError per problem, each message naming the
    file (and line where one is found), the section or partner, and the field.
    """
    where = str(path)
    text = _read(path, where)
    document = _parse(text, where)
    hook = secret_hook(environ, path.parent, resolve=resolve_secrets)
    built = build(GatewayConfig, _with_workflow_default(_with_partner_body_limits(document)), hook)
    if built.value is not None:
        return built.value
    lines, names = TomlLines(text), _partner_names(document)
    located = [_locate(where, lines, names, document, problem) for problem in built.problems]
    # File order; problems of the file as a whole (a missing section) first.
    errors = [error for _, error in sorted(located, key=lambda found: found[0] or 0)]
    count = f"{len(errors)} problem{'s' if len(errors) != 1 else ''}"
    raise ConfigError(f"{where}: {count}", errors=errors)


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


def _locate(
    where: str, lines: TomlLines, names: list[str], document: dict[str, Any], problem: Problem
) -> tuple[int | None, FieldError]:
    """Return the line of one problem and its FieldError, the message naming file and place."""
    path, message = problem
    cut = min((i for i in (path.find("."), path.find("[")) if i >= 0), default=len(path))
    section, rest = path[:cut], path[cut:]
    if section == "partners":
        index = re.match(r"^\[(\d+)\]\.?(.*)$", rest)
        label, field = (names[int(index[1])], index[2]) if index else ("[[partners]]", rest)
    else:
        label, field = f"[{section}]", rest.removeprefix(".")
        is_table = isinstance(document.get(section), dict)
        if not field and message.startswith("unknown key") and is_table:
            message = message.replace("unknown key", "unknown section", 1)
        elif not field and message == "missing required field":
            hint = SECTION_HINTS.get(section)
            message = "missing section" + (f": {hint}" if hint else "")
    line = lines.find(path)
    at = f"{where}:{line}" if line else where
    text = f"{field}: {message}" if field else message
    return line, FieldError(_dollar(path), f"{at}: {label}: {text}")


def _with_partner_body_limits(document: dict[str, Any]) -> dict[str, Any]:
    """Return `document` with [http] max_body_bytes as the default of each partner's own."""
    http = document.get("http")
    ceiling = http.get("max_body_bytes", MIB) if isinstance(http, dict) else MIB
    partners = document.get("partners")
    try:
        ceiling = msgspec.convert(ceiling, BodyBytes)
    except msgspec.ValidationError:
        return document  # [http] says what is wrong; the partners keep their own default
    if not isinstance(partners, list):
        return document
    filled = [
        {**table, "max_body_bytes": ceiling}
        if isinstance(table, dict) and "max_body_bytes" not in table
        else table
        for table in partners
    ]
    return {**document, "partners": filled}


def _with_workflow_default(document: dict[str, Any]) -> dict[str, Any]:
    """Return `document` with the threads off when it has no [workflow] and no ERP events.

    Only a [workflow] written in the file is held to [erp] publish_events (rules.py); without
    one the threads run when the ERP's events are published and stay off (logged) when not.
    """
    if "workflow" in document:
        return document
    erp = document.get("erp")
    if not isinstance(erp, dict) or erp.get("publish_events", True) is not False:
        return document
    return {**document, "workflow": {"enabled": False}}


def _partner_names(document: dict[str, Any]) -> list[str]:
    # A partner is named by its id when the id is valid, else by its position in the file.
    partners = document.get("partners")
    names = []
    for index, table in enumerate(partners if isinstance(partners, list) else []):
        partner_id = table.get("id") if isinstance(table, dict) else None
        valid = isinstance(partner_id, str) and re.fullmatch(PARTNER_ID_PATTERN, partner_id)
        names.append(f"partner {partner_id!r}" if valid else f"partners[{index}]")
    return names


def _read(path: Path, where: str) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except OSError as exc:
        message = f"cannot read: {exc.strerror}"
    except UnicodeDecodeError as exc:
        message = f"not UTF-8 (byte {exc.start})"
    raise ConfigError(f"{where}: {message}", errors=[FieldError("$", f"{where}: {message}")])


def _parse(text: str, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = _TOML_AT.match(str(exc))
        at = f"{where}:{match['line']}:{match['column']}" if match else where
        message = f"{at}: {match['message'] if match else exc}"
    raise ConfigError(message, errors=[FieldError("$", message)])


def _dollar(path: str) -> str:
    return "$" + ("" if not path else path if path.startswith("[") else f".{path}")
