"""`gateway config lint FILE`: every problem of a config file at once, with line and column.

The errors are the loader's own (`load_config`: each table's `problems()` and the whole-file
rules in rules.py, so a rule lives in one place and `run` refuses what `lint` reports); lint adds
the column and the warnings a running gateway has no reason to refuse: secrets written inline
in the file (a file that gets committed or copied leaks them), secret files others can read,
and dead settings (a delivery channel for a partner that receives nothing, an X12 profile
nothing uses). Unknown keys are errors already (every table forbids them).
Each line reads `FILE:LINE:COLUMN: PLACE: FIELD: MESSAGE` (warnings say `warning:` after the
position); the exit status is 1 when there is any error, 2 when the file cannot be read,
else 0.
"""

from __future__ import annotations

import re
import stat
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import msgspec

from canonical.errors import ConfigError
from gateway.config.lines import TomlLines
from gateway.config.loader import load_config
from gateway.config.partners import CHANNELS
from gateway.config.settings import GatewayConfig

__all__ = ["LintReport", "lint_config"]

# A bare `FILE:LINE: ` the loader puts first; lint adds the column after it.
_AT_LINE = re.compile(r"^(?P<where>.*?):(?P<line>\d+): ")
_ENV_MISSING = re.compile(r"environment variable \S+ is not set")
# Text that is a secret whatever key it sits under.
_INLINE_SECRET = re.compile(
    r"^(whsec_|-----BEGIN [A-Z ]*PRIVATE KEY-----)|^amqps?://[^/@]*:[^/@]+@"
)
INLINE_WARNING = 'secret written inline: use { env = "NAME" } or { file = "PATH" }'


class LintReport(msgspec.Struct, frozen=True):
    """What lint found: error and warning lines, each `FILE:LINE:COLUMN: ...`, in file order."""

    errors: list[str]
    warnings: list[str]
    unreadable: bool = False  # no file, or not UTF-8: nothing was linted

    @property
    def exit_code(self) -> int:
        """2 when the file cannot be read, 1 when it has any error, else 0."""
        return 2 if self.unreadable else 1 if self.errors else 0


def lint_config(
    path: Path, environ: Mapping[str, str], *, allow_missing_env: bool = False
) -> LintReport:
    """Lint the config file at `path`; secrets by `{ env = ... }` are looked up in `environ`.

    With `allow_missing_env` an unset environment variable is a warning, not an error: a CI job
    lints the file without the production secrets.
    """
    where = str(path)
    unreadable = False
    try:
        text = path.read_text("utf-8")
        lines = TomlLines(text)
        document = tomllib.loads(text)
    except (OSError, UnicodeDecodeError):
        lines, document, unreadable = TomlLines(""), {}, True
    except tomllib.TOMLDecodeError:
        lines, document = TomlLines(text), {}
    errors: list[tuple[int, str]] = []
    warnings: list[tuple[int, str]] = []
    dead: list[tuple[str, str]] = []
    try:
        config = load_config(path, environ)
    except ConfigError as exc:
        for error in exc.errors:
            line, message = _with_column(error.path, error.message, lines)
            if allow_missing_env and _ENV_MISSING.search(message):
                warnings.append((line, _as_warning(message)))
            else:
                errors.append((line, message))
    else:
        dead = list(_dead_settings(config))
    for key_path, message in [*_warnings(document, path.parent), *dead]:
        position = lines.position(key_path) or (0, 0)
        warnings.append(
            (
                position[0],
                f"{where}:{position[0]}:{position[1]}: warning: {_label(key_path)}: {message}",
            )
        )
    return LintReport(
        errors=[m for _, m in sorted(errors, key=lambda e: e[0])],
        warnings=[m for _, m in sorted(warnings, key=lambda w: w[0])],
        unreadable=unreadable,
    )


def _with_column(dollar_path: str, message: str, lines: TomlLines) -> tuple[int, str]:
    """Return (line, message) with the column put after the loader's `FILE:LINE`."""
    found = _AT_LINE.match(message)
    if found is None:
        return 0, message
    key_path = dollar_path.removeprefix("$").removeprefix(".")
    position = lines.position(key_path)
    line = int(found["line"])
    if position is None or position[0] != line:
        return line, message  # TOML syntax errors already carry their own column
    return line, f"{found['where']}:{line}:{position[1]}: {message[found.end() :]}"


def _as_warning(message: str) -> str:
    found = re.match(r"^(.*?:\d+(?::\d+)?): ", message)
    return f"{found[1]}: warning: {message[found.end() :]}" if found else f"warning: {message}"


def _label(key_path: str) -> str:
    return key_path or "(file)"


def _warnings(document: Any, base: Path, at: str = "") -> Iterator[tuple[str, str]]:
    """Walk the parsed file: inline secrets, and secret files that others can read."""
    if isinstance(document, dict):
        if set(document) == {"file"} and isinstance(document["file"], str):
            yield from _secret_file(at, base / document["file"])
            return
        for key, value in document.items():
            yield from _warnings(value, base, f"{at}.{key}" if at else str(key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from _warnings(value, base, f"{at}[{index}]")
    elif isinstance(document, str) and _INLINE_SECRET.match(document):
        yield at, INLINE_WARNING


def _dead_settings(config: GatewayConfig) -> Iterator[tuple[str, str]]:
    """Settings that load but do nothing: a channel with nothing to carry, an unused profile."""
    for i, partner in enumerate(config.partners):
        channel = next((name for name in CHANNELS if getattr(partner, name) is not None), None)
        if channel is not None and not partner.receives:
            yield f"partners[{i}].{channel}", "dead: receives is empty, nothing goes this way"
        x12_rules = partner.files is not None and any(
            rule.format == "x12" for rule in partner.files.rules
        )
        if partner.x12 is not None and not x12_rules and not partner.edi.send_as_x12:
            yield (
                f"partners[{i}].x12",
                "dead: no x12 file rule and no [partners.edi] send_as_x12 uses this profile",
            )
    if config.telemetry is not None and config.telemetry.sample_ratio == 0:
        # Spans the gateway continues still follow their sender's flag: not quite nothing, but
        # a table that means "off" should be absent, so no exporter runs.
        yield "telemetry.sample_ratio", "dead: 0 records no trace the gateway starts"


def _secret_file(at: str, path: Path) -> Iterator[tuple[str, str]]:
    try:
        mode = path.stat().st_mode
    except OSError:
        return  # the loader reports a file it cannot read
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        yield at, f"secret file {path.name} is readable by others (chmod 600)"
