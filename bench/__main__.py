"""`python -m bench`: parse the command line, run one scenario, print its ratio table.

python -m bench list
python -m bench ingest-burst [--duration 10 --connections 64] [--quick] [--systems a,b]
python -m bench relay-drain [--rows 200000 --window 512]
python -m bench end-to-end [--rates 1000,2000,5000 --step-seconds 60]
python -m bench soak [--count 1000000 --rate 2000]
python -m bench delivery-isolation [--orders 12000 --order-rate 200 --hang-timeout 2]
python -m bench availability [--duration 10 --connections 64 --profile-hz 0]
python -m bench orders [--duration 10 --connections 64]
python -m bench workflow [--threads 100000 --rate 0 --passivate 5]
python -m bench plot bench/results/<file>.json
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import msgspec

from bench.harness.plots import plot_result
from bench.harness.results import RunResult
from bench.harness.run import DEFAULT_RESULTS_DIR, Options, execute
from bench.harness.systems import SYSTEMS
from bench.scenarios import SCENARIOS

# Options each scenario takes beyond the common ones: (flag, Options field, type, help).
_SCENARIO_FLAGS: dict[str, list[tuple[str, str, Any, str]]] = {
    "ingest-burst": [
        ("--duration", "duration_s", float, "seconds of load per system (10)"),
        ("--connections", "connections", int, "wrk connections (64)"),
        ("--threads", "threads", int, "wrk threads, at most 10 (2)"),
        (
            "--profile-hz",
            "profile_hz",
            int,
            "py-spy each system under load at this rate; top functions in the notes (off)",
        ),
    ],
    "availability": [
        ("--duration", "duration_s", float, "seconds of load per system (10)"),
        ("--connections", "connections", int, "wrk connections (64)"),
        ("--threads", "threads", int, "wrk threads, at most 10 (2)"),
        ("--profile-hz", "profile_hz", int, "py-spy each system under load (off)"),
    ],
    "orders": [
        ("--duration", "duration_s", float, "seconds of load per system (10)"),
        ("--connections", "connections", int, "wrk connections (64)"),
        ("--threads", "threads", int, "wrk threads, at most 10 (2)"),
        ("--profile-hz", "profile_hz", int, "py-spy each system under load (off)"),
    ],
    "relay-drain": [
        ("--rows", "rows", int, "outbox rows to drain (200000)"),
        ("--window", "window", int, "confirm window of the publish ceilings (512)"),
    ],
    "end-to-end": [
        ("--rates", "rates", str, "offered msg/s, comma-separated (1000,2000,5000)"),
        ("--step-seconds", "step_s", float, "seconds per rate (60)"),
        ("--max-rate", "max_rate", int, "stop climbing above this rate (50000)"),
        ("--rate-growth", "rate_growth", float, "factor between steps after the list (1.5)"),
        ("--connections", "e2e_connections", int, "generator connections (256)"),
    ],
    "soak": [
        ("--count", "count", int, "messages through (1000000)"),
        ("--rate", "rate", float, "offered msg/s (2000)"),
        ("--sample-seconds", "sample_s", float, "seconds between samples (3)"),
    ],
    "delivery-isolation": [
        ("--orders", "orders", int, "ERP purchase orders per run (12000; quick: 1000)"),
        ("--order-rate", "order_rate", float, "orders published per second (200)"),
        ("--hang-timeout", "hang_timeout_s", float, "partners' timeout_s, seconds (2)"),
    ],
    "workflow": [
        ("--threads", "workflow_threads", int, "ERP orders, one thread each (100000; quick: 2000)"),
        ("--rate", "workflow_rate", float, "orders published per second (0: unbounded)"),
        ("--passivate", "passivate_s", float, "threads' passivate_after_s (5)"),
    ],
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="SCENARIO")
    sub.add_parser("list", help="list the scenarios and systems")
    plot = sub.add_parser("plot", help="redraw the PNG of a saved result")
    plot.add_argument("result", type=Path)
    for name, scenario in SCENARIOS.items():
        p = sub.add_parser(name, help=scenario.summary)
        p.add_argument("--quick", action="store_true", help="a couple of seconds per system")
        defaults = ",".join(scenario.default_systems)
        p.add_argument("--systems", help=f"comma-separated subset (default: {defaults})")
        p.add_argument("--partners", type=int, help="bench partners posting (16)")
        p.add_argument("--synchronous", choices=("FULL", "NORMAL"), help="gateway store (FULL)")
        p.add_argument("--results-dir", help=f"where results go ({DEFAULT_RESULTS_DIR})")
        p.add_argument("--keep", action="store_true", help="keep the work folder (logs, store)")
        p.add_argument("--max-minutes", type=float, help="hard bound on the whole run (180)")
        p.add_argument(
            "--quiet-wait",
            dest="quiet_wait_s",
            type=float,
            help="seconds to wait for an idle machine before each measurement (60; quick: 0)",
        )
        for flag, field, kind, text in _SCENARIO_FLAGS.get(name, []):
            p.add_argument(flag, dest=field, type=kind, help=text)
    return parser


def _options(args: argparse.Namespace) -> Options:
    options = Options().quickened() if args.quick else Options()
    given: dict[str, Any] = {}
    for key in ("partners", "synchronous", "results_dir", "max_minutes", "quiet_wait_s"):
        if getattr(args, key) is not None:
            given[key] = getattr(args, key)
    if args.keep:
        given["keep"] = True
    if args.systems:
        given["systems"] = tuple(s.strip() for s in args.systems.split(",") if s.strip())
    for _, field, _, _ in _SCENARIO_FLAGS.get(args.command, []):
        value = getattr(args, field, None)
        if value is None:
            continue
        given[field] = tuple(int(r) for r in value.split(",")) if field == "rates" else value
    return msgspec.structs.replace(options, **given)


def _list() -> None:
    print("scenarios:")
    for name, scenario in SCENARIOS.items():
        print(f"  {name:14} {scenario.summary}")
        print(f"  {'':14} systems: {', '.join(scenario.default_systems)}")
    print("systems:")
    for name, system in SYSTEMS.items():
        print(f"  {name:22} [{system.role}] {system.summary}")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "list":
        _list()
        return 0
    if args.command == "plot":
        result = msgspec.json.decode(args.result.read_bytes(), type=RunResult)
        print(plot_result(result, args.result.with_suffix(".png")))
        return 0
    result = anyio.run(
        execute, SCENARIOS[args.command], _options(args), backend_options={"use_uvloop": True}
    )
    failures = [s.system for s in result.systems if s.error]
    return 1 if failures or not result.systems else 0


if __name__ == "__main__":
    sys.exit(main())
