"""The student's program as a child process: started with ``{host}``, ``{port}`` and
``{file}`` put into its arguments, watched (alive? CPU, open files, threads) and stopped.

The server's sockets are read with ``netlab sockets``' own kernel reader (netlink sock_diag,
the port filter run in the kernel), so that waiting for a server to listen never connects to
it: a connection would be taken by a handout-style server for a client and block its accept
loop on that client's nickname.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

from netlab import embedded, net
from netlab.procstat import ProcessWatch, listening_pid
from netlab.sockets.config import Conn, SocketsConfig
from netlab.sockets.kernel import read_table

STDERR_LINES = 3  # quoted when a server dies mid-case


class StartError(Exception):
    """The program could not be started or never listened."""


def substitute(args: Sequence[str], **values: str) -> list[str]:
    """``{host}``, ``{port}``, ``{file}`` replaced in each argument; other braces stay."""
    out = []
    for arg in args:
        for key, value in values.items():
            arg = arg.replace("{" + key + "}", value)
        out.append(arg)
    if out and out[0] == "netlab" and shutil.which("netlab") is None:
        out[:1] = [sys.executable, "-m", "netlab"]  # the same netlab as this one
    return out


def tcp_sockets(port: int, states: frozenset[str]) -> list[Conn]:
    """The kernel's TCP sockets with ``port`` at either end, in ``states``."""
    config = SocketsConfig(port=port, states=states)
    # netlab sockets' own reader: netlink sock_diag, the port filter run in the kernel.
    return [conn for proto in ("tcp", "tcp6") for conn in read_table(proto, config)]


def server_side(port: int, state: str) -> int:
    """How many sockets whose local port is ``port`` are in ``state`` (the server's ends)."""
    return sum(1 for conn in tcp_sockets(port, frozenset({state})) if conn.local.port == port)


class _Output:
    """A child's stdout or stderr, written to a temporary file: a file never fills up and
    blocks the child the way a pipe read too slowly would (a server printing in a busy loop
    must spin at its full speed, not at the speed of our reading)."""

    def __init__(self, keep: int = 1 << 18) -> None:
        self.file = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        self.keep = keep

    @property
    def total(self) -> int:
        return os.fstat(self.file.fileno()).st_size

    @property
    def data(self) -> bytes:
        """The last ``keep`` bytes written."""
        return os.pread(self.file.fileno(), self.keep, max(0, self.total - self.keep))

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")

    def last(self, n: int = STDERR_LINES) -> str:
        lines = [line for line in self.text().splitlines() if line.strip()]
        return " | ".join(lines[-n:]) or "(none)"

    def close(self) -> None:
        self.file.close()


class Program:
    """A started child: its process, its output, its CPU."""

    def __init__(self, argv: list[str], stdin: int | None = subprocess.DEVNULL) -> None:
        self.argv = argv
        self.stdout, self.stderr = _Output(), _Output()
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=stdin,
                stdout=self.stdout.file,
                stderr=self.stderr.file,
                start_new_session=True,  # its own group: stopping it stops what it started
            )
        except OSError as exc:
            raise StartError(f"cannot run {argv[0]!r}: {exc.strerror or exc}") from None
        self.watch = ProcessWatch(self.proc.pid)  # CPU, open files, threads (procstat)
        _LIVE.add(self)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    @property
    def status(self) -> int | None:
        return self.proc.poll()

    def watch_listener(self, host: str, port: int) -> None:
        """Watch the process that listens, when it is not the one started (a wrapper's child)."""
        pid = listening_pid(host, port)
        if pid is not None and pid != self.proc.pid:
            self.watch = ProcessWatch(pid)

    def cpu_seconds(self) -> float:
        return self.watch.cpu_seconds() or 0.0

    def cpu_percent(self, window: float) -> float:
        """Its CPU use over the next ``window`` seconds, in % of one core."""
        start, began = self.cpu_seconds(), time.monotonic()
        time.sleep(window)  # the window is the measurement
        return 100.0 * (self.cpu_seconds() - start) / (time.monotonic() - began)

    def open_files(self) -> int | None:
        """Its file descriptors, sockets included (None once it is gone)."""
        return self.watch.open_files()

    def threads(self) -> int | None:
        return self.watch.threads()

    def wait_exit(self, timeout: float) -> bool:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self) -> None:
        """SIGTERM to its group, then SIGKILL if it lingers; its pipes are closed."""
        _LIVE.discard(self)
        if self.alive():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            if not self.wait_exit(2.0):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        self.stdout.close()
        self.stderr.close()


_LIVE: set[Program] = set()
"""Programs started and not stopped yet: a Ctrl-C stops them all (each runs in a session of
its own, so the terminal's SIGINT never reaches it)."""


def stop_all() -> None:
    for program in list(_LIVE):
        program.stop()


def start_server(
    args: Sequence[str], host: str, timeout: float, file: str = ""
) -> tuple[Program, int]:
    """Start the server command on a free port; return once that port listens."""
    port = net.free_port(host)
    program = Program(substitute(args, host=host, port=str(port), file=file))
    if embedded.poll_until(lambda: server_side(port, "LISTEN") > 0, timeout, program.alive):
        program.watch_listener(host, port)
        return program, port
    command, where = " ".join(program.argv), net.format_address(host, port)
    if not program.alive():
        why = (
            f"{command} exited with status {program.status} before listening on {where};"
            f" its last stderr lines: {program.stderr.last()}"
        )
        program.stop()
        raise StartError(why)
    program.stop()
    raise StartError(f"{command} did not listen on {where} within {timeout:g} s")
