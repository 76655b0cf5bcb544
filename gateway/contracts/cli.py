"""`gateway openapi [--listener L] [--out FILE]` and `gateway asyncapi [--out FILE]`.

Both print the generated document (or write it to FILE) and need no config file: the contracts
depend only on the code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_contract_parsers", "run_contract_command"]


def add_contract_parsers(sub: Any) -> None:
    """Add the `openapi` and `asyncapi` commands to the CLI's subparsers."""
    openapi = sub.add_parser("openapi", help="print or write the OpenAPI 3.1 of a listener")
    openapi.add_argument(
        "--listener",
        choices=("partner", "admin", "api"),
        default="partner",
        help="which listener (partner: webhooks and pull; admin; api: the customer API)",
    )
    openapi.add_argument("--out", type=Path, help="write to this file instead of stdout")
    asyncapi = sub.add_parser("asyncapi", help="print or write the AsyncAPI 3.0 of the events")
    asyncapi.add_argument("--out", type=Path, help="write to this file instead of stdout")


def run_contract_command(args: argparse.Namespace) -> int:
    """Run `openapi` or `asyncapi`; 0 when written, 2 when the file cannot be written."""
    from gateway.contracts import asyncapi_json, openapi_json

    body = openapi_json(args.listener) if args.command == "openapi" else asyncapi_json()
    if args.out is None:
        sys.stdout.write(body.decode() + "\n")
        return 0
    try:
        args.out.write_bytes(body + b"\n")
    except OSError as exc:
        print(f"cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}", file=sys.stderr)
    return 0
