"""Session-wide real services: one throwaway RabbitMQ node for the whole run.

Under CI (CI=true) a service that cannot start fails the run; on a developer machine without
rabbitmq-server the tests that need it are skipped with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

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
