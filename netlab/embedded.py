"""A ``netlab serve`` child process on a free loopback port.

What ``netlab simulate`` and ``netlab bench`` start when no target is given, and what the tests
start: a real server in its own process, so that it shows up as one in socket tables, as in
the lab. The child picks a free port (``--port 0``) and prints where it listens; that line is
the only thing read from its standard output.
"""

from __future__ import annotations

import contextlib
import re
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TypeVar

from netlab.serve.config import ServerConfig

# server.BANNER with the address taken apart; IPv6 comes in brackets.
_BANNER = re.compile(r"^netlab serve listening on \[?([^\]\s]+?)\]?:(\d+)\s*$")


T = TypeVar("T")


class ServerStartError(Exception):
    """The child did not come up; the message carries what it logged."""


def serve_command() -> list[str]:
    """How to start ``netlab serve``: through the ``netlab`` script beside this Python when
    there is one, so the process is called ``netlab`` in socket tables, else ``-m netlab``."""
    script = Path(sys.executable).with_name("netlab")
    if script.is_file():
        return [str(script), "serve"]
    return [sys.executable, "-m", "netlab", "serve"]


@dataclass
class ServerProcess:
    proc: subprocess.Popen[bytes]
    host: str
    port: int
    log_file: IO[bytes]
    """The server's log (its standard error)."""

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def log(self) -> str:
        self.log_file.flush()
        self.log_file.seek(0)
        return self.log_file.read().decode("utf-8", errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Ask it to shut down (it tells its clients and exits 0); kill it if it does not."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.proc.returncode


def child_options(config: ServerConfig) -> list[str]:
    """The options that give a child ``config``, but for where it listens and its console
    (``start`` sets those: ``--port 0`` and no console)."""
    return replace(config, host=ServerConfig.host, port=ServerConfig.port, console=None).arguments()


def read_until(
    proc: subprocess.Popen[bytes], match: Callable[[bytes], T | None], timeout: float
) -> T | None:
    """Read the child's standard output a line at a time until ``match(line)`` gives something
    (returned); None at its end or after ``timeout`` seconds."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while selector.select(max(0.0, deadline - time.monotonic())):
            line = proc.stdout.readline()
            if (found := match(line)) is not None:
                return found
            if not line:
                break
    return None


def poll_until(
    condition: Callable[[], bool], timeout: float, alive: Callable[[], bool] = lambda: True
) -> bool:
    """Ask ``condition()`` every 20 ms until it holds (True), ``timeout`` seconds pass or
    ``alive()`` turns false (False): for what there is nothing to wait on, such as a child's
    listening socket in the kernel's table."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if not alive():
            return False
        time.sleep(0.02)
    return False


def start(
    options: Sequence[str] | ServerConfig = (),
    host: str = "127.0.0.1",
    log_file: IO[bytes] | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 20.0,
) -> ServerProcess:
    """Start ``netlab serve --port 0 OPTIONS`` and wait until it says where it listens.

    ``options`` is a ``ServerConfig`` (its host is where the child listens) or the options as
    strings."""
    if isinstance(options, ServerConfig):
        host, options = options.host, child_options(options)
    log = log_file if log_file is not None else tempfile.TemporaryFile()  # noqa: SIM115
    proc = subprocess.Popen(
        [*serve_command(), "--host", host, "--port", "0", "--no-console", *options],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=log,
        env=env,
    )
    if m := read_until(proc, lambda line: _BANNER.search(line.decode(errors="replace")), timeout):
        return ServerProcess(proc, m.group(1), int(m.group(2)), log)
    server = ServerProcess(proc, host, 0, log)
    server.stop()
    said = server.log().strip() or f"nothing said within {timeout:g} s"
    raise ServerStartError(f"netlab serve did not start: {said}")


@contextlib.contextmanager
def running(options: Sequence[str] | ServerConfig = (), **kwargs) -> Iterator[ServerProcess]:
    """``start`` for the length of a ``with`` block; stopped (SIGTERM) after it."""
    server = start(options, **kwargs)
    try:
        yield server
    finally:
        server.stop()
        server.log_file.close()
