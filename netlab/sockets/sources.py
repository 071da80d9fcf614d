"""Where the sockets come from: the kernel's tables on Linux, psutil elsewhere; who owns them.

Owners (PID) are found by matching socket inodes against /proc/<pid>/fd, as ss and psutil do;
program names are then looked up once per snapshot, one lookup per process.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable

from netlab.sockets import kernel
from netlab.sockets.config import KINDS, Address, Conn, SocketsConfig


def gather(config: SocketsConfig) -> tuple[list[Conn], bool]:
    """The sockets ``config`` asks for, with their owners' PIDs, and whether some owners exist
    but the system would not say who (other users' processes)."""
    if os.path.isdir("/proc/net"):
        return _linux_conns(config)
    return _psutil_conns(config)


def process_names(pids: Iterable[int]) -> dict[int, str | None]:
    """{pid: program name} for each distinct pid; None for a process that is gone or hidden."""
    import psutil

    names: dict[int, str | None] = {}
    for pid in set(pids):
        try:
            names[pid] = psutil.Process(pid).name()
        except psutil.Error:
            names[pid] = None
    return names


# ---- Linux ----------------------------------------------------------------------------------


def _linux_conns(config: SocketsConfig) -> tuple[list[Conn], bool]:
    conns = [conn for proto in KINDS[config.kind] for conn in kernel.read_table(proto, config)]
    owners, hidden = _owners({conn.inode for conn in conns if conn.inode}, config.pid)
    conns = [conn._replace(pid=owners.get(conn.inode)) for conn in conns]
    if config.pid is not None:
        conns = [conn for conn in conns if conn.pid == config.pid]
    return conns, hidden and any(conn.inode and conn.pid is None for conn in conns)


def _owners(inodes: set[int], only_pid: int | None = None) -> tuple[dict[int, int], bool]:
    """{socket inode: pid} for the wanted inodes, and whether some processes were unreadable.

    Every process's descriptors have to be looked at (ss -p and psutil do the same), but the
    processes with the fewest go first and the search stops once every wanted socket has its
    owner: the chat server and clients are found before the process that holds 10,000."""
    owners: dict[int, int] = {}
    if not inodes:
        return owners, False
    hidden = False
    fd_lists = []
    for name in [str(only_pid)] if only_pid is not None else os.listdir("/proc"):
        if name.isdigit():
            try:
                fd_lists.append((name, os.listdir(f"/proc/{name}/fd")))
            except PermissionError:
                hidden = True
            except OSError:  # the process just exited
                pass
    fd_lists.sort(key=lambda entry: len(entry[1]))
    wanted = {f"socket:[{inode}]": inode for inode in inodes}
    for pid, fds in fd_lists:
        for fd in fds:
            try:
                inode = wanted.pop(os.readlink(f"/proc/{pid}/fd/{fd}"), None)
            except OSError:
                continue
            if inode is not None:
                owners[inode] = int(pid)
                if not wanted:
                    return owners, hidden
    return owners, hidden


# ---- elsewhere: psutil ---------------------------------------------------------------------

_PSUTIL_KINDS = {
    (socket.AF_INET, socket.SOCK_STREAM): "tcp",
    (socket.AF_INET6, socket.SOCK_STREAM): "tcp6",
    (socket.AF_INET, socket.SOCK_DGRAM): "udp",
    (socket.AF_INET6, socket.SOCK_DGRAM): "udp6",
}


def _psutil_conns(config: SocketsConfig) -> tuple[list[Conn], bool]:
    import psutil

    hidden = False
    try:
        found = psutil.net_connections(config.kind)
    except psutil.AccessDenied:
        # macOS refuses the whole list to non-root users: gather what each process shows.
        hidden, found = True, []
        for process in psutil.process_iter():
            try:
                found += [c._replace(pid=process.pid) for c in process.net_connections(config.kind)]
            except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
                continue
    conns = []
    for c in found:
        conn = Conn(
            _PSUTIL_KINDS[(c.family, c.type)],
            Address(*c.laddr),
            Address(*c.raddr) if c.raddr else None,
            c.status,
            0,
            c.pid,
        )
        if _wanted(conn, config):
            conns.append(conn)
    hidden = hidden or any(conn.pid is None and conn.state != "TIME_WAIT" for conn in conns)
    return conns, hidden


def _wanted(conn: Conn, config: SocketsConfig) -> bool:
    ports = (conn.local.port, conn.remote.port if conn.remote else None)
    return (
        (config.port is None or config.port in ports)
        and config.wants_state(conn.state)
        and (config.pid is None or conn.pid == config.pid)
    )
