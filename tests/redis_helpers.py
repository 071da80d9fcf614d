"""A real ``redis-server`` for the cluster tests, on a free loopback port.

No fake Redis: the tests start the Debian package's ``redis-server`` (skipped cleanly when it
is not installed), without persistence, so that a stop and start empties it as a real outage
of an unpersisted Redis would.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import Timeout, free_port

REDIS_SERVER = shutil.which("redis-server")

needs_redis = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")


class RedisServer:
    """One ``redis-server`` process; ``stop`` and ``start`` again keep its port."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        assert REDIS_SERVER is not None
        for _ in range(5):  # a free port can be taken between the probe and the bind
            port = self.port or free_port()
            log = open(self.directory / f"redis-{port}.log", "ab")  # noqa: SIM115
            self.proc = subprocess.Popen(
                [
                    REDIS_SERVER,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.directory),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            log.close()
            if self._wait_ready(port, timeout):
                self.port = port
                return
            self.proc.kill()
            self.proc.wait()
        raise Timeout("redis-server did not start")

    def _wait_ready(self, port: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return True
            except OSError:
                pass
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        """Gone at once (SIGKILL), as when Redis crashes or its machine drops off."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

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
