"""`gateway edi inspect FILE`: what the gateway makes of an X12 file, as JSON, without running.

(`gateway edi unacknowledged` is parsed here and answered by gateway/edi_watch.py.)

Prints the interchanges (envelopes, groups, sets and the canonical documents they map to) and
every error with its segment and element position; exits 0 when every set is accepted, 1
otherwise (a file that is not X12 included: its error is printed as JSON), 2 when the file or
the config cannot be read. `--ack` adds the 997/999/TA1 the gateway would send; they are
numbered from 1 here, where the running gateway takes the numbers from the partner's
persisted sequences. No config is needed; `--config` with `--partner` reads with that
partner's X12 profile (the default profile when the partner has none).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["MAX_INSPECT_BYTES", "add_edi_parser", "run_edi_command"]

# A file larger than this is not read: inspect holds it whole, and EDI files are far smaller.
MAX_INSPECT_BYTES = 64 * 1024 * 1024
EXIT_ACCEPTED, EXIT_REJECTED, EXIT_UNREADABLE = 0, 1, 2


def add_edi_parser(sub: Any) -> None:
    """Add `edi inspect` to the `gateway` command's subparsers."""
    edi = sub.add_parser("edi", help="X12 tools")
    edi_sub = edi.add_subparsers(dest="edi_command", required=True, metavar="ACTION")
    inspect = edi_sub.add_parser(
        "inspect", help="read an X12 file, print its interchanges and documents as JSON"
    )
    inspect.add_argument("file", type=Path)
    inspect.add_argument("--partner", help="read with this partner's X12 profile")
    inspect.add_argument("--config", type=Path, help="the gateway's TOML file (for --partner)")
    inspect.add_argument("--ack", action="store_true", help="also print the acks it would send")
    late = edi_sub.add_parser(
        "unacknowledged", help="X12 sets sent that no 997/999 has answered, oldest first"
    )
    late.add_argument("--config", type=Path, required=True, help="the gateway's TOML file")
    late.add_argument(
        "--older-than", default="0s", help="only sets sent longer ago than this (90m, 24h, 2d)"
    )
    late.add_argument("--partner", help="only this partner's")
    late.add_argument("--limit", type=int, default=1000, help="at most this many (1000)")
    late.add_argument("--json", action="store_true", help="one JSON object per line")


def run_edi_command(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Run `gateway edi ACTION`; returns the exit status."""
    if args.edi_command == "unacknowledged":
        from gateway.edi_watch import list_unacknowledged

        return list_unacknowledged(
            args.config,
            environ,
            older_than=args.older_than,
            partner=args.partner,
            limit=args.limit,
            as_json=args.json,
        )
    if args.edi_command != "inspect":
        return EXIT_UNREADABLE
    return inspect_file(
        args.file, partner=args.partner, config=args.config, ack=args.ack, environ=environ
    )


def inspect_file(
    path: Path,
    *,
    partner: str | None,
    config: Path | None,
    ack: bool,
    environ: Mapping[str, str],
) -> int:
    """Print what `path` reads as; see the module's docstring for the exit statuses."""
    try:
        size = path.stat().st_size
        if size > MAX_INSPECT_BYTES:
            return _refuse(path, f"{size} bytes, over the {MAX_INSPECT_BYTES} bytes inspected")
        data = path.read_bytes()
    except OSError as exc:
        print(f"gateway edi inspect: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    profile = _profile(partner, config, environ)
    if profile is None:
        return EXIT_UNREADABLE
    from canonical.x12 import ControlNumbers, decode_file, render_acknowledgements

    digest = hashlib.sha256(data).hexdigest()
    reading = decode_file(data, file_name=path.name, sha256=digest, profile=profile)
    report: dict[str, Any] = {
        "file": str(path),
        "sha256": digest,
        "partner": partner,
        "accepted": reading.accepted,
        "refused": reading.decoding.refused,
        "interchanges": reading.interchanges,
        "functional_acks": reading.functional_acks,
        "errors": reading.problems,
    }
    if ack:
        try:
            rendered = render_acknowledgements(
                reading, ControlNumbers(interchange=1, group=1), at=dt.datetime.now(dt.UTC)
            )
            report["acknowledgements"] = [text.decode("latin-1") for text in rendered]
        except Exception as exc:  # the report is still worth printing; say what failed
            report["acknowledgements_error"] = f"{type(exc).__name__}: {exc}"
    _print(report)
    return EXIT_ACCEPTED if reading.accepted else EXIT_REJECTED


def _profile(partner: str | None, config: Path | None, environ: Mapping[str, str]) -> Any:
    from canonical.x12 import X12Profile

    if config is None:
        return X12Profile()
    from canonical.errors import ConfigError
    from gateway.config import load_config

    try:
        cfg = load_config(config, environ, resolve_secrets=False)  # it uses no secret
    except ConfigError as exc:
        for line in [error.message for error in exc.errors] or [exc.detail]:
            print(f"gateway edi inspect: {line}", file=sys.stderr)
        return None
    if partner is None:
        return X12Profile()
    found = next((p for p in cfg.partners if p.id == partner), None)
    if found is None:
        print(f"gateway edi inspect: no partner {partner!r} in {config}", file=sys.stderr)
        return None
    configured = getattr(found, "x12", None)
    if configured is None:
        return X12Profile()
    if isinstance(configured, X12Profile):
        return configured
    import msgspec

    return msgspec.convert(msgspec.to_builtins(configured), X12Profile)


def _refuse(path: Path, why: str) -> int:
    _print({"file": str(path), "accepted": False, "refused": why, "errors": [{"detail": why}]})
    return EXIT_REJECTED


def _print(report: dict[str, Any]) -> None:
    import msgspec

    encoded = msgspec.json.Encoder(enc_hook=str, decimal_format="string").encode(report)
    sys.stdout.write(msgspec.json.format(encoded, indent=2).decode() + "\n")
