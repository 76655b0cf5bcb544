"""Session-wide real services: one throwaway RabbitMQ node and one sshd for the whole run.

Under CI (CI=true) a service that cannot start fails the run; on a developer machine without
rabbitmq-server the tests that need it are skipped with the reason.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sshd import sftp_server, sshd  # noqa: F401 - the session's sshd (tests/sshd.py)

from gateway.localbroker import BrokerUnavailable, LocalRabbitMQ

IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def service_missing(reason: str) -> None:
    """Fail under CI, skip elsewhere: a missing real service is never a silent pass."""
    if IN_CI:
        pytest.fail(f"required service unavailable under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def rabbitmq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRabbitMQ]:
    """A RabbitMQ node started from Debian's rabbitmq-server for this test session."""
    node = LocalRabbitMQ(Path(tmp_path_factory.mktemp("rabbitmq")))
    try:
        node.start()
    except BrokerUnavailable as exc:
        service_missing(str(exc))
    yield node
    node.destroy()


@pytest.fixture
def amqp_url(rabbitmq: LocalRabbitMQ) -> str:
    return rabbitmq.url


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs mounted for this test (needs root), unmounted afterwards."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError as exc:
        service_missing(f"no mount command for the disk-full test: {exc}")
    if mounted.returncode != 0:
        service_missing(f"cannot mount a tmpfs for the disk-full test: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)
