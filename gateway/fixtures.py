"""`gateway config test DIR --config FILE`: run a partner's sample inputs, compare what comes out.

Each folder under DIR is one fixture: a `fixture.toml` and the files it names.

    partner = "acme"                     # a partner of the config
    input = "ack.json"                   # the sample input, in this folder
    document_type = "purchase_order_ack" # JSON webhooks: the endpoint posted to; files: none
    expected = "expected.json"           # default; what must come out (below)

A `.json` input is a webhook body: it goes through the checks and the decoder the ingress uses
(the partner may send that document type; `canonical.decode_document`). Any other input is a
file: the partner's file rules (`[partners.files]`) pick the rule by name, and the rule's
decoder (`actors.files.formats.DECODERS`: CSV, X12 with the partner's profile) reads it; an X12
file also renders the acknowledgements it owes (control numbers from 1, dated `ack_date`,
default 2026-01-01T00:00:00Z, so the output is stable). The expected JSON is
`{"documents": [...], "problems": [...], "acknowledgements": [...]}`: documents as canonical
JSON (for files with their `provenance`, less the file's sha256), problems with reason and
detail (a refused file or document is one problem), acknowledgements as lists of segment lines;
a key left out is not compared. Nothing touches the network or the store. A fixture that
differs prints a unified diff; the exit status is 1 when any fixture fails, 2 when the config
or DIR cannot be read.
`--update` writes each expected file from what came out (a new partner's fixtures start so).
"""

from __future__ import annotations

import datetime as dt
import difflib
import fnmatch
import hashlib
import json
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from actors.files.formats import DECODERS, FileRefused, FileRule
from canonical import decode_document
from canonical.errors import ConfigError, GatewayError
from canonical.files import FileDocument
from canonical.x12 import ControlNumbers, X12Profile, decode_file, render_acknowledgements
from gateway.config import GatewayConfig, PartnerConfig, load_config

__all__ = ["FixtureResult", "run_config_test", "run_fixture"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# A sample input is a file a partner would send; bigger ones belong in the bench, not in CI.
MAX_FIXTURE_INPUT_BYTES = 16 * 1024 * 1024
DEFAULT_ACK_DATE = "2026-01-01T00:00:00Z"


class FixtureSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A fixture's `fixture.toml`."""

    partner: str
    input: str
    document_type: str | None = None
    expected: str = "expected.json"
    ack_date: str = DEFAULT_ACK_DATE


class FixtureResult(msgspec.Struct, frozen=True):
    """One fixture's outcome: `diff` is empty when what came out is what was expected."""

    name: str
    passed: bool
    diff: str = ""


def run_config_test(
    directory: Path,
    config_path: Path | None,
    environ: Mapping[str, str],
    *,
    update: bool = False,
) -> int:
    """The `gateway config test` command; returns its exit status.

    With `update`, a fixture's expected file is (re)written from what came out: how a new
    partner's fixtures start (read the file before committing it: it is what the gateway does,
    not necessarily what it should do).
    """
    if config_path is None:
        print("give --config FILE or set GATEWAY_CONFIG", file=sys.stderr)
        return EXIT_USAGE
    try:
        config = load_config(config_path, environ)
    except ConfigError as exc:
        for line in [error.message for error in exc.errors] or [exc.detail]:
            print(line, file=sys.stderr)
        return EXIT_USAGE
    if not directory.is_dir():
        print(f"no fixture folder {directory}", file=sys.stderr)
        return EXIT_USAGE
    folders = sorted(p for p in directory.iterdir() if (p / "fixture.toml").is_file())
    if not folders:
        print(f"{directory}: no fixtures (folders with a fixture.toml)", file=sys.stderr)
        return EXIT_FAILED
    results = [run_fixture(folder, config, update=update) for folder in folders]
    for result in results:
        print(f"{'ok  ' if result.passed else 'FAIL'} {result.name}")
        if result.diff:
            print(result.diff)
    failed = sum(not r.passed for r in results)
    print(f"{len(results) - failed} passed, {failed} failed", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def run_fixture(folder: Path, config: GatewayConfig, *, update: bool = False) -> FixtureResult:
    """Run one fixture folder against `config`; never raises for a bad fixture."""
    name = folder.name
    try:
        spec = msgspec.convert(tomllib.loads((folder / "fixture.toml").read_text()), FixtureSpec)
        partner = next((p for p in config.partners if p.id == spec.partner), None)
        if partner is None:
            return FixtureResult(name, False, f"  partner {spec.partner!r} is not in the config")
        data = (folder / spec.input).read_bytes()
        if len(data) > MAX_FIXTURE_INPUT_BYTES:
            return FixtureResult(name, False, f"  {spec.input}: over {MAX_FIXTURE_INPUT_BYTES} B")
        expected_path = folder / spec.expected
        expected = None if update else json.loads(expected_path.read_text())
    except (OSError, ValueError, tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
        return FixtureResult(name, False, f"  fixture unreadable: {exc}")
    if spec.input.endswith(".json"):
        actual = _webhook(partner, spec, data)
    else:
        actual = _file(partner, spec, folder / spec.input, data)
    if expected is None:
        # Through JSON, as a hand-written file would read.
        plain = msgspec.json.decode(msgspec.json.encode(actual))
        expected_path.write_text(json.dumps(plain, indent=2, sort_keys=True) + "\n")
        return FixtureResult(name, True, f"  wrote {expected_path}")
    wanted = {
        key: expected[key]
        for key in ("documents", "problems", "acknowledgements")
        if key in expected
    }
    # Through JSON, as the expected side came: tuples become lists, decimals text.
    got = msgspec.json.decode(msgspec.json.encode({key: actual.get(key, []) for key in wanted}))
    if got == wanted:
        return FixtureResult(name, True)
    return FixtureResult(name, False, _diff(wanted, got, folder / spec.expected))


def _webhook(partner: PartnerConfig, spec: FixtureSpec, body: bytes) -> dict[str, Any]:
    """What the ingress makes of `body` posted to the partner's `document_type` endpoint."""
    document_type = spec.document_type or ""
    if document_type not in partner.sends:
        problem = {
            "reason": "document-not-allowed",
            "detail": f"{partner.id!r} may not send {document_type!r}",
        }
        return {"documents": [], "problems": [problem]}
    try:
        document = decode_document(document_type, body)
    except GatewayError as exc:
        return {"documents": [], "problems": [_problem(exc)]}
    return {"documents": [msgspec.to_builtins(document)], "problems": []}


def _file(partner: PartnerConfig, spec: FixtureSpec, path: Path, data: bytes) -> dict[str, Any]:
    """What the file intake's decoder makes of the file, and the X12 acks it owes."""
    file_name = path.name
    rules = partner.files.rules if partner.files is not None else ()
    rule = next((r for r in rules if fnmatch.fnmatchcase(file_name, r.pattern)), None)
    if rule is None:
        problem = {"reason": "no_rule", "detail": f"no file rule of {partner.id!r} matches"}
        return {"documents": [], "problems": [problem]}
    profile = partner.x12 or X12Profile()
    options = rule.csv_feed() if rule.format == "csv" else profile
    file_rule = FileRule(
        pattern=rule.pattern, document_type=rule.document_type, format=rule.format, options=options
    )
    sha256 = hashlib.sha256(data).hexdigest()
    documents: list[Any] = []
    problems: list[Any] = []
    try:
        for item in DECODERS[rule.format](path, file_name=file_name, sha256=sha256, rule=file_rule):
            # The file's digest is left out: the expected file names the input already.
            found = msgspec.to_builtins(item)
            found["provenance"].pop("sha256", None)
            (documents if isinstance(item, FileDocument) else problems).append(found)
    except FileRefused as exc:
        problems.append({"reason": exc.code, "detail": exc.detail})
    out: dict[str, Any] = {"documents": documents, "problems": problems}
    if rule.format == "x12":
        reading = decode_file(data, file_name=file_name, sha256=sha256, profile=profile)
        at = dt.datetime.fromisoformat(spec.ack_date)
        acks = render_acknowledgements(reading, ControlNumbers(interchange=1, group=1), at=at)
        # One list of segment lines per ack: a diff then points at the segment that differs.
        out["acknowledgements"] = [ack.decode("ascii", "replace").splitlines() for ack in acks]
    return out


def _problem(exc: GatewayError) -> dict[str, Any]:
    problem: dict[str, Any] = {"reason": exc.reason, "detail": exc.detail}
    if exc.errors:
        problem["errors"] = [[e.path, e.message] for e in exc.errors]
    return problem


def _diff(wanted: Any, got: Any, expected_path: Path) -> str:
    def lines(value: Any) -> list[str]:
        return json.dumps(value, indent=2, sort_keys=True, default=str).splitlines()

    return "\n".join(
        "  " + line
        for line in difflib.unified_diff(
            lines(wanted), lines(got), str(expected_path), "actual", lineterm=""
        )
    )
