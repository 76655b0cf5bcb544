"""Run wrk against a webhook endpoint with signed purchase orders, and read its figures.

wrk is the closed-loop load generator of the ingest scenarios: C and epoll, so its own CPU
share stays small next to the server's. The signing is done per request in `sign.lua` (see
there why that beats a pool of pre-signed requests); this module writes the script's input,
runs wrk with a hard time bound, samples wrk's CPU, and parses the JSON line `done()` prints.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import msgspec

from bench.harness.documents import BenchPartner, OrderTemplate
from bench.harness.processes import ProcessFigures, run_to_end

__all__ = [
    "SIGN_SCRIPT",
    "WrkFigures",
    "WrkUnavailable",
    "lua_string",
    "run_wrk",
    "write_wrk_input",
]

SIGN_SCRIPT = Path(__file__).with_name("sign.lua")
_MARKER = "BENCH_WRK_JSON "
#: Time wrk may take beyond its own duration (connecting, the last responses) before it is killed.
WRK_OVERRUN_S = 30.0


class WrkUnavailable(RuntimeError):
    """wrk is not installed, or it did not print its summary."""


class WrkFigures(msgspec.Struct, frozen=True, kw_only=True):
    """What one wrk run measured: counts, errors, latency percentiles, wrk's own CPU."""

    duration_s: float
    requests: int
    accepted: int  # answers below 400 (wrk counts 4xx/5xx as status errors)
    accepted_per_s: float
    errors: dict[str, int]
    latency_ms: dict[str, float]
    generator: ProcessFigures


def lua_string(value: bytes) -> str:
    # Decimal escapes for every byte: exact for keys, safe for any body.
    return '"' + "".join(f"\\{b:03d}" for b in value) + '"'


def write_wrk_input(
    path: Path,
    *,
    run: str,
    template: OrderTemplate,
    partners: Sequence[BenchPartner],
    document: str = "purchase_order",
) -> Path:
    """Write the Lua table `sign.lua` reads: run token, body template and partners' keys."""
    entries = ",\n".join(
        f"  {{ path = {lua_string(p.path(document).encode())}, key = {lua_string(p.key)} }}"
        for p in partners
    )
    path.write_text(
        "return {\n"
        f"  run = {lua_string(run.encode())},\n"
        f"  head = {lua_string(template.head)},\n"
        f"  tail = {lua_string(template.tail)},\n"
        f"  partners = {{\n{entries}\n  }},\n"
        "}\n"
    )
    return path


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise WrkUnavailable("wrk not found: apt-get install wrk")
    return found


async def run_wrk(
    url: str,
    wrk_input: Path,
    *,
    duration_s: float,
    connections: int,
    threads: int,
    timeout_s: float = 5.0,
    epoch: int = 0,
    log_path: Path,
    script: Path = SIGN_SCRIPT,
) -> WrkFigures:
    """Run wrk for `duration_s` against `url` (scheme://host:port) and return its figures.

    `epoch` (0-9) starts the run's sequence numbers at epoch * 10^9, so several wrk runs
    against one gateway never repeat an order; `threads` is at most 10 for the same reason.
    `script` takes the same two arguments as `sign.lua`: the epoch and its input file.
    """
    if not 0 <= epoch <= 9 or not 1 <= threads <= 10:
        raise ValueError("epoch must be 0-9 and threads 1-10 (sequence number layout)")
    argv = [
        wrk_binary(),
        f"-t{threads}",
        f"-c{max(connections, threads)}",
        f"-d{max(1, round(duration_s))}s",
        "--timeout",
        f"{max(1, round(timeout_s))}s",
        "-s",
        str(script),
        url,
        "--",
        str(epoch),
        str(wrk_input),
    ]
    finished = await run_to_end(
        "wrk", argv, log_path=log_path, time_limit=duration_s + WRK_OVERRUN_S
    )
    return parse_wrk_output(finished.output, finished.figures)


def parse_wrk_output(output: str, generator: ProcessFigures) -> WrkFigures:
    """Parse the `BENCH_WRK_JSON` line that `sign.lua`'s done() prints."""
    for line in output.splitlines():
        if line.startswith(_MARKER):
            raw = msgspec.json.decode(line[len(_MARKER) :])
            break
    else:
        raise WrkUnavailable(f"wrk printed no summary:\n{output[-2000:]}")
    duration = raw["duration_us"] / 1e6
    requests = int(raw["requests"])
    errors = {k: int(v) for k, v in raw["errors"].items()}
    accepted = requests - errors["status"]
    latency = {k: round(v / 1000, 3) for k, v in raw["latency_us"].items()}
    return WrkFigures(
        duration_s=round(duration, 3),
        requests=requests,
        accepted=accepted,
        accepted_per_s=round(accepted / duration, 1) if duration else 0.0,
        errors=errors,
        latency_ms=latency,
        generator=generator,
    )
