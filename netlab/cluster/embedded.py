"""A cluster on this machine: a ``redis-server`` on a free loopback port and several
``netlab serve --redis`` children. What ``netlab simulate`` starts for ``server: {servers: N}``
and what the tests start; the fault steps (``kill-server``, ``stop-redis``, ``start-redis``)
act on it."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from netlab import embedded

INSTALL_REDIS = (
    "redis-server is not installed (it is not on PATH): install it, e.g."
    " `sudo apt-get install redis-server` on Debian or Ubuntu, `brew install redis` on macOS"
)


class NoRedisServer(embedded.ServerStartError):
    """There is no ``redis-server`` to start: the message says how to install one."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisProcess:
    """One ``redis-server`` without persistence (a stop loses what it held, as a crash of an
    unpersisted Redis would); ``stop`` and ``start`` again keep its port."""

    def __init__(self, directory: Path, executable: str | None = None) -> None:
        executable = executable or shutil.which("redis-server")
        if executable is None:
            raise NoRedisServer(INSTALL_REDIS)
        self.executable = executable
        self.directory = directory
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        for _ in range(5):  # a free port can be taken between the probe and the bind
            port = self.port or free_port()
            with open(self.directory / f"redis-{port}.log", "ab") as log:
                self.proc = subprocess.Popen(
                    [
                        *(self.executable, "--port", str(port), "--bind", "127.0.0.1"),
                        *("--save", "", "--appendonly", "no", "--dir", str(self.directory)),
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            if self._ready(port, timeout):
                self.port = port
                return
            self.stop()
        raise embedded.ServerStartError(f"redis-server did not start (see {self.directory})")

    def _ready(self, port: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", port), timeout=1) as sock,
            ):
                sock.sendall(b"PING\r\n")
                if sock.recv(64).startswith(b"+PONG"):
                    return True
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        """Gone at once (SIGKILL), as when Redis crashes or its machine drops off."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


@dataclass
class EmbeddedCluster:
    """``count`` servers of one cluster on a Redis of their own."""

    count: int
    options: list[str] = field(default_factory=list)
    """``netlab serve`` options for every server (``--redis`` and ``--cluster`` are added)."""
    redis: RedisProcess | None = None
    servers: list[embedded.ServerProcess] = field(default_factory=list)

    def start(self) -> EmbeddedCluster:
        directory = Path(tempfile.mkdtemp(prefix="netlab-cluster-"))
        self.redis = RedisProcess(directory)
        self.redis.start()
        try:
            for _ in range(self.count):
                self.servers.append(
                    embedded.start([*self.options, "--redis", self.redis.url, "--cluster", "sim"])
                )
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [server.address for server in self.servers]

    def kill_server(self, number: int) -> None:
        """Server ``number`` (1 for the first) dies at once: SIGKILL."""
        server = self.servers[number - 1]
        if server.proc.poll() is None:
            server.proc.send_signal(signal.SIGKILL)
            server.proc.wait()

    def stop_redis(self) -> None:
        assert self.redis is not None
        self.redis.stop()

    def start_redis(self) -> None:
        assert self.redis is not None
        if self.redis.proc is None:
            self.redis.start()

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
            server.log_file.close()
        if self.redis is not None:
            self.redis.stop()
