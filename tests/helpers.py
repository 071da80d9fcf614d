"""Real peers for the tests: a ``netlab serve`` child process and a plain socket chat client.

Everything waits on a condition (a line arrived, a port listens) with a deadline, never on a
fixed sleep.
"""

from __future__ import annotations

import fcntl
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from netlab import embedded
from netlab import protocol as p
from netlab.serve.config import ServerConfig

ROOT = Path(__file__).resolve().parent.parent


def _handout() -> Path:
    """``../shared/handout`` beside the checkout, or beside a folder above it (a worktree)."""
    for folder in ROOT.parents:
        if (folder / "shared" / "handout").is_dir():
            return folder / "shared" / "handout"
    return ROOT.parent / "shared" / "handout"


HANDOUT = _handout()
NETLAB = [sys.executable, "-m", "netlab"]


class Timeout(AssertionError):
    pass


def free_port() -> int:
    """A loopback port nothing listens on (for connection-refused cases and peers of our own)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def interrupt_when(
    proc: subprocess.Popen[str], ready: Callable[[], bool], timeout: float = 20.0
) -> tuple[str, str]:
    """Once ``ready()`` holds (asked every 20 ms while ``proc`` runs), Ctrl-C ``proc`` (SIGINT)
    and return what it printed; it is killed whatever happens, so no test leaves it behind."""
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            assert time.monotonic() < deadline and proc.poll() is None, "it never got there"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        return proc.communicate(timeout=timeout)
    finally:
        proc.kill()
        proc.communicate()


def wait_listening(port: int, timeout: float = 5.0) -> None:
    """Until something accepts connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise Timeout(f"nothing listens on port {port}")


class ServerProcess(embedded.ServerProcess):
    """A ``netlab serve`` on a free port, with what tests ask of it."""

    def wait_log(self, pattern: str, timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log()
            if re.search(pattern, text):
                return text
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise Timeout(f"log has no {pattern!r}:\n{self.log()}")

    def connect(self, nick: str | None = None, newline: bool = True) -> ChatPeer:
        peer = ChatPeer.connect(self.host, self.port)
        if nick is not None:
            peer.join(nick, newline=newline)
        return peer


def start_server(
    *args: str,
    config: ServerConfig | None = None,
    host: str = "127.0.0.1",
    log_path: Path,
    env: dict | None = None,
):
    """Start ``netlab serve --port 0 ARGS`` (or the child of ``config``, its options built by
    ``ServerConfig.arguments``); its log goes to ``log_path``."""
    log_file = open(log_path, "w+b")  # noqa: SIM115 (closed by the fixture)
    options = config if config is not None else args
    environment = {**os.environ, **(env or {})}
    server = embedded.start(options, host=host, log_file=log_file, env=environment)
    return ServerProcess(server.proc, server.host, server.port, server.log_file)


@dataclass
class ChatPeer:
    """A blocking socket client that reads lines with deadlines."""

    sock: socket.socket
    buffer: bytes = b""
    lines: list[str] = field(default_factory=list)  # every line received, in order

    @classmethod
    def connect(cls, host: str, port: int, timeout: float = 5.0) -> ChatPeer:
        sock = socket.create_connection((host, port), timeout=timeout)
        return cls(sock)

    def join(self, nick: str, newline: bool = True) -> str:
        """Answer the prompt with ``nick``; return the welcome line."""
        assert self.recv_exact(4) == b"NICK"
        self.send_raw(nick.encode() + (b"\n" if newline else b""))
        return self.expect("Connected to server!")

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def wait_acknowledged(self, timeout: float = 5.0) -> None:
        """Until the peer's kernel has acknowledged every byte sent (the send queue is empty)."""
        deadline = time.monotonic() + timeout
        while fcntl.ioctl(self.sock, termios.TIOCOUTQ, b"\0\0\0\0") != b"\0\0\0\0":
            if time.monotonic() > deadline:
                raise Timeout("the peer never acknowledged what was sent")
            time.sleep(0.001)

    def say(self, text: str) -> None:
        self.sock.sendall(text.encode() + b"\n")

    def log_in(self, password: str = "secret") -> None:
        """``/login``, and the next line is the server's yes."""
        self.say(f"/login {password}")
        assert self.readline() == p.NOW_OPERATOR

    def recv_exact(self, n: int, timeout: float = 5.0) -> bytes:
        deadline = time.monotonic() + timeout
        while len(self.buffer) < n:
            self._fill(deadline)
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def _fill(self, deadline: float) -> bool:
        """Read once; False at end of stream."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Timeout(f"nothing more arrived; got {self._tail()}")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            raise Timeout(f"nothing more arrived; got {self._tail()}") from None
        if not data:
            raise EOFError(f"connection closed; got {self._tail()}")
        self.buffer += data
        return True

    def _tail(self) -> str:
        """The last lines and bytes received, short enough for an error message."""
        return repr([line[:120] for line in self.lines[-5:]])[:800] + f" + {self.buffer[:200]!r}"

    def readline(self, timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            self._fill(deadline)
        raw, self.buffer = self.buffer.split(b"\n", 1)
        line = raw.decode("utf-8", errors="replace")
        self.lines.append(line)
        return line

    def expect(self, text: str, timeout: float = 5.0) -> str:
        """Read lines until one contains ``text``; return it."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.readline(max(0.0, deadline - time.monotonic()))
            if text in line:
                return line

    def read_until_closed(self, timeout: float = 5.0) -> list[str]:
        """Every line until the server closes the connection."""
        deadline = time.monotonic() + timeout
        got = []
        while True:
            try:
                got.append(self.readline(max(0.0, deadline - time.monotonic())))
            except EOFError:
                if self.buffer:
                    got.append(self.buffer.decode(errors="replace"))
                return got
            except ConnectionResetError:
                return got

    def read_for(self, seconds: float) -> list[str]:
        """Every line that arrives within ``seconds``."""
        deadline = time.monotonic() + seconds
        got = []
        while True:
            try:
                got.append(self.readline(max(0.0, deadline - time.monotonic())))
            except Timeout:
                return got

    def silent_for(self, seconds: float) -> bool:
        """True when no complete line arrives within ``seconds`` (used to check a copy was
        not sent: bounded by the caller's choice, after a line that proves the order)."""
        try:
            line = self.readline(seconds)
        except Timeout:
            return True
        self.buffer = line.encode() + b"\n" + self.buffer
        self.lines.pop()
        return False

    def wait_online(self, count: int, timeout: float = 5.0) -> str:
        """Ask ``/who`` until the server counts ``count`` online; return its answer."""
        deadline = time.monotonic() + timeout
        while True:
            self.say("/who")
            line = self.expect(" online: ", timeout=max(0.1, deadline - time.monotonic()))
            if line.startswith(f"{count} online") or time.monotonic() > deadline:
                return line
            time.sleep(0.05)  # polling the server's view; the answer is checked by the caller

    def close(self) -> None:
        self.sock.close()

    def reset(self) -> None:
        """Close abruptly: an RST instead of a FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def __enter__(self) -> ChatPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
