"""What a process spends: CPU time, memory, files and threads, read through psutil.

The one place netlab samples a process, its own (bots, bench) or a server's (bench, check).
CPU is the process's own user+system time, never a percentage times elapsed time. Every reading
is None once the process is gone or hidden, so callers print ``-``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
from typing import Any


def own_cpu_seconds() -> float:
    """This process's CPU time so far (user + system)."""
    times = os.times()
    return times.user + times.system


def own_peak_rss_mb() -> float | None:
    with contextlib.suppress(ImportError):
        import resource

        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return None


def describe(process: Any) -> str:
    """``ncat``, ``netlab``, or for a script run by Python, ``python3 server.py``."""
    name = process.name()
    command = process.cmdline()
    if name.startswith("python") and len(command) > 1 and not command[1].startswith("-"):
        name += " " + os.path.basename(command[1])
    return name


CLOCK_TICK = 1 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01
"""How finely psutil's CPU times (from /proc/PID/stat) tick."""


FEW_THREADS = 16


def _schedstat(process: Any) -> float | None:
    """Seconds on a CPU of all its threads, from /proc/PID/task/*/schedstat (Linux: the first
    field, in ns), or None where there is none."""
    total = 0
    try:
        for task in os.listdir(f"/proc/{process.pid}/task"):
            with open(f"/proc/{process.pid}/task/{task}/schedstat", encoding="ascii") as stat:
                total += int(stat.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return total / 1e9


class ProcessWatch:
    """One process by pid; ``None`` pid (a remote server) reads as unknown throughout."""

    def __init__(self, pid: int | None) -> None:
        import psutil

        self._error = psutil.Error
        self.process: psutil.Process | None = None
        self.peak_rss = 0
        self.cpu_resolution = CLOCK_TICK
        self.name = "-"
        if pid is not None:
            with contextlib.suppress(psutil.Error):
                self.process = psutil.Process(pid)
                self.name = f"{describe(self.process)} (pid {pid})"

    def _read(self, how: str, **kwargs: Any) -> Any:
        if self.process is None:
            return None
        try:
            return getattr(self.process, how)(**kwargs)
        except (self._error, OSError):
            self.process = None
            return None

    def cpu_seconds(self) -> float | None:
        """User + system time. A process of a few long-lived threads (netlab serve and its
        libuv pool, ncat) is read from its threads' /proc schedstat, to the nanosecond; others
        (a thread per client, whose exited threads schedstat forgets) through psutil, to the
        clock tick. ``cpu_resolution`` says which the last reading was."""
        threads = self._read("num_threads")
        if threads and threads <= FEW_THREADS and (precise := _schedstat(self.process)):
            self.cpu_resolution = 1e-9
            return precise
        times = self._read("cpu_times")
        self.cpu_resolution = CLOCK_TICK
        return None if times is None else times.user + times.system

    def rss(self) -> int | None:
        memory = self._read("memory_info")
        if memory is None:
            return None
        self.peak_rss = max(self.peak_rss, memory.rss)
        return memory.rss

    def open_files(self) -> int | None:
        return self._read("num_fds")

    def threads(self) -> int | None:
        return self._read("num_threads")

    def alive(self) -> bool:
        return bool(self._read("is_running"))

    def listens(self, port: int) -> bool:
        """Whether the process has a TCP socket listening on ``port`` (False once it is gone)."""
        import psutil

        conns = self._read("net_connections", kind="tcp") or []
        return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in conns)


def listening_pid(host: str, port: int) -> int | None:
    """The process listening on ``port`` when ``host`` is this machine, else None."""
    import psutil

    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
    except OSError:
        return None
    local = {a.address for nics in psutil.net_if_addrs().values() for a in nics}
    if not any(ipaddress.ip_address(a.split("%")[0]).is_loopback or a in local for a in addresses):
        return None
    with contextlib.suppress(psutil.Error, OSError):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                return conn.pid
    return None
