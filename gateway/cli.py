"""The `gateway` command: parses arguments, configures logging, calls one function."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from gateway.contracts.cli import add_contract_parsers
from gateway.edi_cli import add_edi_parser

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the gateway with a config file")
    run.add_argument("config", type=Path, help="the gateway's TOML file")

    demo = sub.add_parser("demo", help="RabbitMQ + gateway + two scripted partners, end to end")
    demo.add_argument("--keep", action="store_true", help="keep running after the script")

    schema = sub.add_parser("schema", help="write the JSON Schema of every canonical document")
    schema.add_argument("--out", type=Path, default=Path("schemas"), help="folder (./schemas)")

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = config_sub.add_parser("check", help="validate a config file, list every error")
    check.add_argument("file", type=Path)

    trace = sub.add_parser("trace", help="a purchase order's thread: documents, events, state")
    trace.add_argument("reference", help="a PO number or a thread's correlation id")
    trace.add_argument("--config", type=Path, required=True, help="the gateway's TOML file")
    trace.add_argument("--json", action="store_true", help="print JSON instead of text")

    dead = sub.add_parser("dead-letters", help="list, show or replay what the gateway gave up on")
    dead_sub = dead.add_subparsers(dest="dead_command", required=True, metavar="ACTION")
    for action, text in (
        ("list", "one line per dead letter matching the filters"),
        ("show", "one dead letter with its detail and body, as JSON"),
        ("replay", "hand dead letters back to the step that gave up; by id or by filters"),
    ):
        cmd = dead_sub.add_parser(action, help=text)
        cmd.add_argument("--config", type=Path, required=True, help="the gateway's TOML file")
        if action != "list":
            cmd.add_argument("id", type=int, nargs="?" if action == "replay" else None)
        if action != "show":
            cmd.add_argument(
                "--source",
                help="only this source (delivery:acme) or kind (delivery, relay, amqp, intake)",
            )
            cmd.add_argument("--partner", help="only this partner's")
            cmd.add_argument("--document", help="only this document type")
            cmd.add_argument("--since", help="died at or after this ISO 8601 time (UTC if bare)")
            cmd.add_argument("--until", help="died before this ISO 8601 time (UTC if bare)")
        if action == "list":
            cmd.add_argument("--limit", type=int, default=100, help="at most this many (100)")
    add_edi_parser(sub)
    add_contract_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    match args.command:
        case "schema":
            from canonical.schema import write_schemas

            written = write_schemas(args.out)
            print(f"wrote {len(written)} schemas to {args.out}")
            return 0
        case "config":
            from gateway.config import check_config

            code, lines = check_config(args.file, os.environ)
            for line in lines:
                print(line, file=sys.stdout if code == 0 else sys.stderr)
            return code
        case "run":
            from gateway.app import run_from_file

            return run_from_file(args.config, os.environ)
        case "dead-letters":
            from gateway.deadletters import run_dead_letters_command

            return run_dead_letters_command(
                args.dead_command,
                args.config,
                os.environ,
                dead_letter_id=getattr(args, "id", None),
                source=getattr(args, "source", None),
                partner=getattr(args, "partner", None),
                document=getattr(args, "document", None),
                since=getattr(args, "since", None),
                until=getattr(args, "until", None),
                limit=getattr(args, "limit", 100),
            )
        case "trace":
            from gateway.trace import run_trace_command

            return run_trace_command(args.reference, args.config, os.environ, as_json=args.json)
        case "edi":
            from gateway.edi_cli import run_edi_command

            return run_edi_command(args, os.environ)
        case "openapi" | "asyncapi":
            from gateway.contracts.cli import run_contract_command

            return run_contract_command(args)
        case "demo":
            from gateway.demo import run_demo

            return run_demo(keep=args.keep)
    return 2


if __name__ == "__main__":
    sys.exit(main())
