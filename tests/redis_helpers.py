"""A real ``redis-server`` for the cluster tests, on a free loopback port.

No fake Redis: the tests start the Debian package's ``redis-server`` (skipped cleanly when it
is not installed) through ``netlab.cluster.embedded.RedisProcess``, without persistence, so
that a stop and start empties it as a real outage of an unpersisted Redis would.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest

from netlab.cluster.embedded import RedisProcess

REDIS_SERVER = shutil.which("redis-server")

needs_redis = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")


class RedisServer(RedisProcess):
    def command(self, *args: str) -> str:
        """Ask it directly through ``redis-cli`` (what a person watching it would do)."""
        cli = shutil.which("redis-cli") or "redis-cli"
        done = subprocess.run(
            [cli, "-p", str(self.port), *args], capture_output=True, text=True, timeout=10
        )
        return done.stdout


@pytest.fixture
def redis_server(tmp_path) -> Iterator[RedisServer]:
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
