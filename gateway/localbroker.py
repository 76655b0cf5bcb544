"""A throwaway RabbitMQ node from Debian's `rabbitmq-server`, for tests, demo and bench.

The node lives entirely under one folder (data, logs, config, Erlang cookie) with its own node
name and ports, so several can run side by side and none touches a system-wide RabbitMQ. See
DESIGN.md for the traps this avoids: the `/usr/sbin` wrappers switch to the `rabbitmq` user and
find another cookie, so everything here calls `/usr/lib/rabbitmq/bin/` with our own `HOME`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["BrokerUnavailable", "LocalRabbitMQ", "free_port"]

RABBITMQ_BIN = Path(os.environ.get("RABBITMQ_BIN", "/usr/lib/rabbitmq/bin"))


class BrokerUnavailable(RuntimeError):
    """The local node could not be started (not installed, or it did not come up in time)."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _ensure_epmd() -> None:
    """Start epmd on its own, so killing one node's process group never takes it from the others."""
    epmd = shutil.which("epmd")
    if epmd is not None and not _port_open(4369):
        subprocess.run([epmd, "-daemon"], check=False, start_new_session=True)


@dataclass
class LocalRabbitMQ:
    """One RabbitMQ node under `base`, listening on 127.0.0.1:`port` (guest/guest allowed)."""

    base: Path
    port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def nodename(self) -> str:
        return f"gw-{self.port}@localhost"

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")}
        env.update(
            HOME=str(self.base),
            RABBITMQ_NODENAME=self.nodename,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(self.base / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.base / "log"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.base / "enabled_plugins"),
            RABBITMQ_CONFIG_FILE=str(self.base / "rabbitmq.conf"),
            RABBITMQ_FEATURE_FLAGS_FILE=str(self.base / "feature_flags"),
            RABBITMQ_PID_FILE=str(self.base / "rabbitmq.pid"),
        )
        return env

    def _prepare(self) -> None:
        for sub in ("mnesia", "log"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        (self.base / "enabled_plugins").write_text("[].\n")
        (self.base / "rabbitmq.conf").write_text(
            "loopback_users = none\n"
            # A test fills the disk on purpose elsewhere; the broker must not block publishers
            # because a shared disk runs low.
            "disk_free_limit.absolute = 1MB\n"
            "vm_memory_high_watermark.relative = 0.6\n"
        )

    def start(self, timeout: float = 60.0) -> None:
        """Start the node and return once it accepts AMQP connections."""
        server = RABBITMQ_BIN / "rabbitmq-server"
        if not server.exists():
            raise BrokerUnavailable(f"{server} not found: apt-get install rabbitmq-server")
        self._prepare()
        _ensure_epmd()
        log = (self.base / "log" / "console.log").open("ab")
        self.process = subprocess.Popen(
            [str(server)],
            env=self._env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=self.base,  # Erlang drops crash dumps in its working directory
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not _port_open(self.port):
            if self.process.poll() is not None:
                raise BrokerUnavailable(f"rabbitmq-server exited early: {self.console_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise BrokerUnavailable(f"no AMQP listener after {timeout}s: {self.console_tail()}")
            time.sleep(0.2)
        # The AMQP port opens before the node has finished booting: ask the node itself.
        while True:
            try:
                self.ctl("rabbitmq-diagnostics", "check_running", timeout=30)
                return
            except (BrokerUnavailable, subprocess.TimeoutExpired) as exc:
                if time.monotonic() > deadline:
                    self.kill()
                    raise BrokerUnavailable(f"node did not finish booting: {exc}") from exc
                time.sleep(0.5)

    def ctl(self, tool: str, *args: str, timeout: float = 30.0) -> str:
        """Run one of the node's CLI tools (rabbitmqctl, rabbitmq-diagnostics...) against it."""
        done = subprocess.run(
            [str(RABBITMQ_BIN / tool), "-n", self.nodename, *args],
            env=self._env(),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise BrokerUnavailable(f"{tool} {' '.join(args)}: {done.stderr.decode()[-2000:]}")
        return done.stdout.decode()

    def console_tail(self, size: int = 2000) -> str:
        path = self.base / "log" / "console.log"
        return path.read_text(errors="replace")[-size:] if path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the whole node (the Erlang VM and its helpers): a broker crash."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None
        deadline = time.monotonic() + 10
        while _port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the node cleanly, falling back to SIGKILL."""
        if self.process is None:
            return
        try:
            self.ctl("rabbitmqctl", "stop", timeout=30)
            self.process.wait(timeout=30)
            self.process = None
        except (BrokerUnavailable, subprocess.TimeoutExpired):
            pass
        self.kill()

    def destroy(self) -> None:
        """Stop the node and remove its folder."""
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)
