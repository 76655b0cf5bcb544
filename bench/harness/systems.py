"""The systems a scenario puts side by side: the gateway, the HTTP ceilings and the peers.

Each is started as its own process on loopback with the same server settings (one worker,
uvloop, httptools where uvicorn serves, backlog 2048, keep-alive 5 s, no access log) and
stopped when the scenario is done with it.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import anyio

from bench.harness.documents import BenchPartner
from bench.harness.gateway import GATEWAY_BIN, write_gateway_config
from bench.harness.probes import http_get, port_open, scrape
from bench.harness.processes import Service, service
from gateway.localbroker import free_port

__all__ = [
    "HTTP_SYSTEMS",
    "SYSTEMS",
    "RunningSystem",
    "System",
    "start_system",
]

HOST = "127.0.0.1"
Role = Literal["gateway", "ceiling", "peer"]


@dataclass(frozen=True)
class System:
    """One system under test, as the scenarios and the results name it."""

    name: str
    role: Role
    uses_broker: bool
    summary: str


SYSTEMS: dict[str, System] = {
    s.name: s
    for s in (
        System(
            "gateway",
            "gateway",
            True,
            "partner-gateway: signature, validation, "
            "SQLite group commit (synchronous=FULL), outbox relay with confirms; "
            "purchase-order threads on (the default)",
        ),
        System(
            "gateway-no-workflow",
            "gateway",
            True,
            "the same gateway with `[workflow] enabled = false`: no thread, feeder or timer",
        ),
        System(
            "gateway-orders",
            "gateway",
            True,
            "the same gateway with `[customer_api]`: orders posted to POST /api/v1/orders, "
            "each committed (inbox record, outbox row, status row) before its 202",
        ),
        System(
            "http-ceiling",
            "ceiling",
            False,
            "ASGI app that only reads and decodes the body; uvicorn + httptools + uvloop",
        ),
        System("http-ceiling-granian", "ceiling", False, "the same app on granian (1 worker)"),
        System(
            "durable-sketch",
            "peer",
            False,
            "the issue's yardstick: signature, typed decode, SQLite group commit "
            "(synchronous=FULL); no relay, no idempotency, no business rules",
        ),
        System(
            "fastapi-aiopika",
            "peer",
            True,
            "FastAPI + pydantic, one confirmed aio-pika publish per request, no outbox",
        ),
        System(
            "fastapi-faststream",
            "peer",
            True,
            "FastAPI + pydantic + FastStream RabbitRouter, one confirmed publish per request",
        ),
    )
}
#: The systems that answer webhooks, in the order results list them (gateway-orders is
#: measured on its customer API, by the orders scenario).
HTTP_SYSTEMS = tuple(name for name in SYSTEMS if name != "gateway-orders")


@dataclass
class RunningSystem:
    """A started system: where it listens, its process, and its admin port if it has one."""

    system: System
    port: int
    service: Service
    admin_port: int | None = None
    store_path: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    async def metrics(self) -> dict[str, float]:
        """Return the system's Prometheus figures (only the gateway has any)."""
        if self.admin_port is None:
            return {}
        return await scrape(HOST, self.admin_port)


def _python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


@asynccontextmanager
async def start_system(
    system: System,
    *,
    workdir: Path,
    partners: list[BenchPartner],
    amqp_url: str | None,
    synchronous: Literal["FULL", "NORMAL"] = "FULL",
) -> AsyncIterator[RunningSystem]:
    """Start `system` for the block, in `workdir`, and stop it (its whole group) afterwards."""
    port = free_port()
    await anyio.Path(workdir).mkdir(parents=True, exist_ok=True)
    log = workdir / f"{system.name}.log"
    if system.uses_broker and amqp_url is None:
        raise ValueError(f"{system.name} needs a broker")
    admin_port: int | None = None
    store_path: Path | None = None
    extra: dict[str, str] = {}

    async def http_ready() -> bool:
        return await port_open(HOST, port)

    async def health_ready() -> bool:
        answer = await http_get(HOST, port, "/healthz")
        return answer is not None and answer[0] == 200

    async def gateway_ready() -> bool:
        assert admin_port is not None
        answer = await http_get(HOST, admin_port, "/readyz")
        return answer is not None and answer[0] == 200

    match system.name:
        case "gateway" | "gateway-no-workflow" | "gateway-orders":
            admin_port = free_port()
            store_path = workdir / "gateway.db"
            api_port = free_port() if system.name == "gateway-orders" else None
            if api_port is not None:
                extra["customer_api_port"] = str(api_port)
            config = write_gateway_config(
                workdir / "gateway.toml",
                http_port=port,
                admin_port=admin_port,
                store_path=store_path,
                amqp_url=amqp_url,
                partners=partners,
                synchronous=synchronous,
                workflow=system.name != "gateway-no-workflow",
                customer_api_port=api_port,
            )
            argv, ready = [str(GATEWAY_BIN), "run", str(config)], gateway_ready
        case "http-ceiling":
            argv = _python_module("bench.baselines.http_ceiling", "--port", str(port))
            ready = http_ready
        case "http-ceiling-granian":
            argv = _python_module(
                "bench.baselines.http_ceiling", "--port", str(port), "--server", "granian"
            )
            ready = http_ready
        case "durable-sketch":
            secrets = workdir / "sketch-secrets.txt"
            secrets.write_text("".join(f"{p.id} {p.secret}\n" for p in partners))
            argv = _python_module(
                "bench.baselines.durable_sketch",
                *("--port", str(port), "--secrets", str(secrets)),
                *("--db", str(workdir / "sketch.db")),
            )
            ready = http_ready
        case "fastapi-aiopika" | "fastapi-faststream":
            module = "bench.baselines." + system.name.replace("-", "_")
            argv = _python_module(module, "--port", str(port), "--amqp-url", str(amqp_url))
            ready = health_ready
        case _:
            raise ValueError(f"unknown system {system.name!r}")
    async with service(system.name, argv, log_path=log, ready=ready, cwd=workdir) as running:
        yield RunningSystem(system, port, running, admin_port, store_path, extra)
