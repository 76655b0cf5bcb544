"""The `gateway` command: parses arguments, configures logging, calls one function.

Every command that reads a config takes it as `--config FILE`, or from the `GATEWAY_CONFIG`
environment variable when the option is left out (`run FILE` stays as a deprecated alias).
Exit status, the same for every command: 0 done; 1 the thing asked for is wrong, missing or
failed (an unknown dead letter, a config with errors under `config lint`, a fixture that does not
match, a failed backup); 2 usage or configuration error (bad arguments, a config that cannot be
loaded for the command to run); 70 the gateway stopped because a part exhausted its restarts.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path

from gateway.contracts.cli import add_contract_parsers
from gateway.edi_cli import add_edi_parser

__all__ = ["CONFIG_ENV", "EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "main"]

CONFIG_ENV = "GATEWAY_CONFIG"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DISTRIBUTION = "partner-gateway"
EPILOG = f"""\
Every --config FILE may be left out when ${CONFIG_ENV} names the file.
Exit status: 0 done; 1 the thing asked for is wrong, missing or failed; 2 usage or a config
that does not load; 70 the gateway stopped, a part having exhausted its restart budget.
Shell completion: gateway completion bash > /etc/bash_completion.d/gateway
"""


def _version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, help=f"the gateway's TOML file (default: ${CONFIG_ENV})"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gateway",
        description="partner-gateway: partner webhooks, files and the ERP's AMQP, through a "
        "durable outbox.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"gateway {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the gateway with a config file")
    run.add_argument("file", type=Path, nargs="?", help="deprecated: use --config FILE")
    _config_option(run)

    demo = sub.add_parser("demo", help="RabbitMQ + gateway + two scripted partners, end to end")
    demo.add_argument("--keep", action="store_true", help="keep running after the script")

    schema = sub.add_parser("schema", help="write the JSON Schema of every canonical document")
    schema.add_argument("--out", type=Path, default=Path("schemas"), help="folder (./schemas)")

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = config_sub.add_parser("check", help="validate a config file, list every error")
    lint = config_sub.add_parser(
        "lint", help="every error and unsafe setting, with line and column; exit 1 on any error"
    )
    for cmd in (check, lint):
        cmd.add_argument("file", type=Path, nargs="?", help="the TOML file (or --config)")
        _config_option(cmd)
    lint.add_argument(
        "--allow-missing-env",
        action="store_true",
        help="an unset environment variable named by a secret is a warning (CI without secrets)",
    )
    fixtures = config_sub.add_parser(
        "test", help="run fixture folders (sample input, expected messages) through the decoders"
    )
    fixtures.add_argument("dir", type=Path, help="a folder of fixtures (one folder each)")
    _config_option(fixtures)
    fixtures.add_argument(
        "--update", action="store_true", help="write each expected file from what came out"
    )

    trace = sub.add_parser("trace", help="a purchase order's thread: documents, events, state")
    trace.add_argument("reference", help="a PO number or a thread's correlation id")
    _config_option(trace)
    trace.add_argument("--json", action="store_true", help="print JSON instead of text")

    dead = sub.add_parser("dead-letters", help="list, show or replay what the gateway gave up on")
    dead_sub = dead.add_subparsers(dest="dead_command", required=True, metavar="ACTION")
    for action, text in (
        ("list", "one line per dead letter matching the filters"),
        ("show", "one dead letter with its detail and body, as JSON"),
        ("replay", "hand dead letters back to the step that gave up; by id or by filters"),
    ):
        cmd = dead_sub.add_parser(action, help=text)
        _config_option(cmd)
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

    backup = sub.add_parser("backup", help="a consistent copy of the store, while it runs")
    _config_option(backup)
    backup.add_argument("--out", type=Path, required=True, help="the copy's path (never replaced)")

    partners = sub.add_parser("partners", help="partner onboarding")
    partners_sub = partners.add_subparsers(dest="partners_command", required=True, metavar="ACTION")
    add = partners_sub.add_parser(
        "add", help="append a partner with a fresh secret; print what to hand the partner"
    )
    add.add_argument("id", help="the partner's id (lowercase letters, digits, - and _)")
    _config_option(add)
    add.add_argument("--name", help="display name (default: the id)")
    add.add_argument("--documents", nargs="+", help="document types it may send (default: all)")
    add.add_argument(
        "--secret-env",
        metavar="VAR",
        help="reference the secret as this environment variable and print it, instead of a file",
    )

    completion = sub.add_parser("completion", help="print a shell completion script")
    completion.add_argument("shell", choices=["bash"])

    add_edi_parser(sub)
    add_contract_parsers(sub)
    return parser


def _with_config_env(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """Let `GATEWAY_CONFIG` stand in for every `--config`, including the hooks' own."""
    from_env = environ.get(CONFIG_ENV)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _with_config_env(child, environ)
        elif "--config" in action.option_strings and from_env:
            action.required = False
            action.default = Path(from_env)


def _config_path(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Path:
    """The config file: the positional FILE (deprecated for run), --config, $GATEWAY_CONFIG."""
    given = getattr(args, "file", None) or args.config
    if given is None:
        parser.error(f"give --config FILE or set {CONFIG_ENV}")
    return Path(given)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    parser = _parser()
    _with_config_env(parser, env)
    args = parser.parse_args(argv)
    match args.command:
        case "schema":
            return _schema(args.out)
        case "config":
            return _config(args, parser, env)
        case "run":
            from gateway.app import run_from_file

            return run_from_file(_config_path(args, parser), env)
        case "dead-letters":
            from gateway.deadletters import run_dead_letters_command

            return run_dead_letters_command(
                args.dead_command,
                _config_path(args, parser),
                env,
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

            path = _config_path(args, parser)
            return run_trace_command(args.reference, path, env, as_json=args.json)
        case "backup":
            from gateway.backup import run_backup_command

            return run_backup_command(_config_path(args, parser), args.out)
        case "partners":
            from gateway.partners_cli import run_partners_add

            return run_partners_add(
                _config_path(args, parser),
                args.id,
                name=args.name,
                documents=args.documents,
                secret_env=args.secret_env,
                environ=env,
            )
        case "completion":
            from gateway.completion import bash_script

            print(bash_script(parser))
            return EXIT_OK
        case "edi":
            from gateway.edi_cli import run_edi_command

            return run_edi_command(args, env)
        case "openapi" | "asyncapi":
            from gateway.contracts.cli import run_contract_command

            return run_contract_command(args)
        case "demo":
            from gateway.demo import run_demo

            return run_demo(keep=args.keep)
    return EXIT_USAGE


def _schema(out: Path) -> int:
    from canonical.schema import write_schemas

    try:
        written = write_schemas(out)
    except OSError as exc:
        print(f"cannot write schemas to {out}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"wrote {len(written)} schemas to {out}")
    return EXIT_OK


def _config(
    args: argparse.Namespace, parser: argparse.ArgumentParser, environ: Mapping[str, str]
) -> int:
    if args.config_command == "test":
        from gateway.fixtures import run_config_test

        return run_config_test(args.dir, args.config, environ, update=args.update)
    path = _config_path(args, parser)
    if args.config_command == "lint":
        from gateway.config.lint import lint_config

        report = lint_config(path, environ, allow_missing_env=args.allow_missing_env)
        for line in report.errors + report.warnings:
            print(line)
        counts = f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)"
        print(f"{path}: {counts}", file=sys.stderr)
        return report.exit_code
    from gateway.config import check_config

    code, lines = check_config(path, environ)
    for line in lines:
        print(line, file=sys.stdout if code == 0 else sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
