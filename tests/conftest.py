"""Fixtures shared by the suite: real ``netlab serve`` processes on free loopback ports."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator

import pytest
from helpers import ServerProcess, start_server
from hypothesis import settings

from netlab.serve.config import ServerConfig

# A loaded 2-core CI machine must not turn a slow example into a failure.
settings.register_profile("netlab", deadline=None)
settings.load_profile("netlab")


@pytest.fixture
def server_factory(tmp_path) -> Iterator[Callable[..., ServerProcess]]:
    """Start servers with any ``netlab serve`` options; all are stopped after the test."""
    started: list[ServerProcess] = []

    def start(
        *args: str,
        config: ServerConfig | None = None,
        host: str = "127.0.0.1",
        env: dict | None = None,
    ) -> ServerProcess:
        log_path = tmp_path / f"serve-{len(started)}.log"
        server = start_server(*args, config=config, host=host, log_path=log_path, env=env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
        server.log_file.close()


@pytest.fixture
def server(server_factory) -> ServerProcess:
    """A ``netlab serve`` with default options but no rate limit worth hitting in tests."""
    return server_factory(config=ServerConfig(admin_password="secret"))


# The cluster tests need the cluster extra's Redis client (the test extra installs it); without
# it they are left out rather than failing to import.
collect_ignore_glob = [] if importlib.util.find_spec("redis") else ["test_cluster_*.py"]
