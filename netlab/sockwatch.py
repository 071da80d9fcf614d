"""``netlab sockets``: netstat for the chat port, with the nicknames behind the connections.

    config = SocketsConfig(port=55555)
    rows = snapshot(config).rows       # list of dicts with the JSON keys of `netlab sockets`
    print(render(rows, config))        # exactly what `netlab sockets --port 55555` prints

On Linux the sockets come from the kernel: TCP over netlink (sock_diag, as ss reads them, with
the port filter run in the kernel), else and for UDP from /proc/net/tcp, tcp6, udp, udp6. Both
give the Recv-Q/Send-Q that psutil leaves out; rows the filter drops are dropped before any
address is decoded or owner looked up, which keeps a machine with 10,000 sockets fast.
Elsewhere psutil.net_connections() supplies them (without queues). Owners (PID, program) are
found by matching socket inodes against /proc/<pid>/fd, as ss and psutil do.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import struct
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from netlab import tables

# psutil's names for the kernel's TCP states, indexed by the kernel's number for each
# (include/net/tcp_states.h): /proc/net/tcp prints the number in hex.
TCP_STATES = (
    None,
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECV",
    "FIN_WAIT1",
    "FIN_WAIT2",
    "TIME_WAIT",
    "CLOSE",
    "CLOSE_WAIT",
    "LAST_ACK",
    "LISTEN",
    "CLOSING",
    "NEW_SYN_RECV",
)
NO_STATE = "NONE"  # psutil's state of a UDP socket, which has none
STATES = (*(state for state in TCP_STATES if state), NO_STATE)
DEFAULT_STATES = frozenset({"LISTEN", "ESTABLISHED", NO_STATE})

# --kind -> the kernel tables that hold it; each table's name is also the Proto column.
KINDS = {
    "tcp": ("tcp", "tcp6"),
    "tcp4": ("tcp",),
    "tcp6": ("tcp6",),
    "udp": ("udp", "udp6"),
    "inet": ("tcp", "tcp6", "udp", "udp6"),
}
FORMATS_WATCH_CANNOT_SHOW = ("json", "csv")

# Table columns in netstat's order; keys are the JSON keys. Side only appears with --port.
COLUMNS = {
    "proto": "Proto",
    "recv_q": "Recv-Q",
    "send_q": "Send-Q",
    "local": "Local Address",
    "remote": "Foreign Address",
    "state": "State",
    "pid": "PID",
    "process": "Program",
    "side": "Side",
    "nick": "Nick",
}

HIDDEN_OWNERS = (
    "netlab sockets: some sockets belong to other users' processes, whose PID and program the "
    "system shows only to root; they are marked '-'. Run it with sudo to see them."
)


@dataclass(frozen=True)
class SocketsConfig:
    """Everything ``netlab sockets`` was asked for; ValueError names a bad option."""

    port: int | None = None
    states: frozenset[str] | None = None  # None: DEFAULT_STATES
    all_states: bool = False
    pid: int | None = None
    kind: str = "tcp"
    fmt: str = tables.TABLE
    watch: bool = False
    interval: float = 1.0

    def __post_init__(self) -> None:
        if self.port is not None and not 1 <= self.port <= 65535:
            raise ValueError(f"--port {self.port} is not a TCP port; use 1-65535")
        if self.states is not None:
            normalized = frozenset(state.upper().replace("-", "_") for state in self.states)
            unknown = sorted(normalized - set(STATES))
            if unknown:
                raise ValueError(
                    f"unknown --state {', '.join(unknown)}; choose from {', '.join(STATES)}"
                )
            object.__setattr__(self, "states", normalized)
        if self.kind not in KINDS:
            raise ValueError(f"unknown --kind {self.kind!r}; choose from {', '.join(KINDS)}")
        tables.check_format(self.fmt)
        if self.watch and self.fmt in FORMATS_WATCH_CANNOT_SHOW:
            raise ValueError(f"--watch draws a table; --format {self.fmt} is for one-off output")
        if self.interval <= 0:
            raise ValueError("--interval must be more than 0 seconds")

    def wants_state(self, state: str) -> bool:
        return self.all_states or state in (self.states or DEFAULT_STATES)

    def columns(self) -> dict[str, str]:
        return {k: v for k, v in COLUMNS.items() if k != "side" or self.port is not None}


class Address(NamedTuple):
    ip: str
    port: int


class Conn(NamedTuple):
    """One socket before it becomes a row; ``inode`` 0 means no owner (e.g. TIME_WAIT)."""

    proto: str
    local: Address
    remote: Address | None
    state: str
    inode: int
    pid: int | None = None
    recv_q: int | None = None
    send_q: int | None = None


@dataclass
class Snapshot:
    rows: list[dict[str, Any]]
    hidden_owners: bool = False  # some owners exist but the system would not tell who


def snapshot(config: SocketsConfig) -> Snapshot:
    """The sockets ``config`` asks for, as rows with exactly the JSON keys, sorted LISTEN
    first, then by local address."""
    if os.path.isdir("/proc/net"):
        conns, hidden = _linux_conns(config)
    else:
        conns, hidden = _psutil_conns(config)
    conns.sort(key=_sort_key)
    return Snapshot(_rows(conns, config), hidden)


def render(rows: list[dict[str, Any]], config: SocketsConfig) -> str:
    """The rows as ``netlab sockets`` prints them: human formats get a summary line."""
    text = tables.render(rows, config.columns(), config.fmt)
    if config.fmt in FORMATS_WATCH_CANNOT_SHOW:
        return text
    if not rows:
        text += "\n(no sockets match" + (f" port {config.port}" if config.port else "") + ")"
    return f"{text}\n{summary(rows)}"


def summary(rows: list[dict[str, Any]]) -> str:
    """``5 sockets: 1 LISTEN, 4 ESTABLISHED; 2 connections`` (both ends of one count once)."""
    states = Counter(row["state"] for row in rows)
    connections = {frozenset((row["local"], row["remote"])) for row in rows if row["remote"]}
    by_state = ", ".join(f"{count} {state}" for state, count in states.items())
    plural = "" if len(rows) == 1 else "s"
    joined = f"{len(connections)} connection{'' if len(connections) == 1 else 's'}"
    return f"{len(rows)} socket{plural}: {by_state or 'none'}; {joined}"


def parser() -> argparse.ArgumentParser:
    """The options of ``netlab sockets``.

    This command parses its own arguments with argparse rather than Typer: it races ``ss`` and
    ``netstat``, and importing Typer (with pydantic behind it) takes longer than reading
    10,000 sockets. ``netlab.__main__`` hands it the arguments before the Typer app loads.
    """
    parse = argparse.ArgumentParser(
        prog="netlab sockets",
        description="Netstat for the chat port: who holds which socket, in what state, with "
        "which nickname.",
        epilog="Example: netlab sockets --port 55555 (the server's LISTEN socket and both ends "
        "of each chat connection). See docs/sockets.md for how to read each column.",
    )
    parse.add_argument(
        "-p",
        "--port",
        type=int,
        metavar="N",
        help="keep sockets whose local or remote port is N (the LISTEN socket and both ends of "
        "each connection), and add the Side column",
    )
    parse.add_argument(
        "-s",
        "--state",
        action="append",
        metavar="STATE",
        help="keep sockets in this TCP state (repeatable), e.g. TIME_WAIT, CLOSE_WAIT; "
        "default: LISTEN and ESTABLISHED",
    )
    parse.add_argument(
        "-a", "--all", action="store_true", dest="all_states", help="keep sockets in every state"
    )
    parse.add_argument("--pid", type=int, metavar="N", help="keep the sockets of this process")
    parse.add_argument(
        "--kind", default="tcp", help=f"which sockets: {', '.join(KINDS)} (default: tcp)"
    )
    parse.add_argument(
        "-f",
        "--format",
        default=tables.TABLE,
        dest="fmt",
        help="table (for people, the default), json, csv, or any tabulate format: github, "
        "grid, plain, ...",
    )
    parse.add_argument(
        "-w",
        "--watch",
        action="store_true",
        help="redraw in place, marking new and gone sockets; Ctrl-C ends",
    )
    parse.add_argument(
        "--interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="seconds between --watch frames (default: 1)",
    )
    return parse


def main(argv: list[str]) -> int:
    """``netlab sockets ARGS``: parse, check, run; a bad argument exits 2 with a message."""
    parse = parser()
    options = parse.parse_args(argv)
    try:
        config = SocketsConfig(
            port=options.port,
            states=frozenset(options.state) if options.state else None,
            all_states=options.all_states,
            pid=options.pid,
            kind=options.kind,
            fmt=options.fmt,
            watch=options.watch,
            interval=options.interval,
        )
    except ValueError as error:
        parse.error(str(error))
    return run(config)


def run(config: SocketsConfig) -> int:
    """``netlab sockets``: print once, or keep a live view with ``--watch``."""
    if config.watch:
        return watch(config)
    taken = snapshot(config)
    warn_hidden_owners(taken)
    print(render(taken.rows, config))
    return 0


_warned = False


def warn_hidden_owners(taken: Snapshot) -> None:
    """Say once per process, on stderr, why some PIDs and programs are '-'."""
    global _warned
    if taken.hidden_owners and not _warned:
        _warned = True
        print(HIDDEN_OWNERS, file=sys.stderr)


# ---- --watch ------------------------------------------------------------------------------

MARK = "mark"  # the watch view's first column: "new" since the last frame, or "gone"


def watch(config: SocketsConfig) -> int:
    """Redraw the table in place every ``config.interval`` seconds until Ctrl-C."""
    from rich.console import Console
    from rich.live import Live

    shown: dict[tuple, dict[str, Any]] | None = None  # None: the first frame, nothing is new
    try:
        with Live(console=Console(), auto_refresh=False) as live:
            while True:
                taken = snapshot(config)
                warn_hidden_owners(taken)
                live.update(_frame(taken.rows, shown, config), refresh=True)
                shown = {_identity(row): row for row in taken.rows}
                time.sleep(config.interval)
    except KeyboardInterrupt:
        pass  # the usual way to leave; the last frame stays on screen
    return 0


def _identity(row: dict[str, Any]) -> tuple:
    return (row["proto"], row["local"], row["remote"])


def _frame(
    rows: list[dict[str, Any]], before: dict[tuple, dict[str, Any]] | None, config: SocketsConfig
) -> Any:
    """One screen of --watch (a rich Text): rows new since ``before`` are marked "new", rows
    of ``before`` that went away are shown once more, marked "gone"."""
    from rich.text import Text

    now = {_identity(row) for row in rows}
    if before is None:
        before = {row_id: {} for row_id in now}
    marked = [{**row, MARK: "" if _identity(row) in before else "new"} for row in rows]
    gone = [{**row, MARK: "gone"} for row_id, row in before.items() if row_id not in now]
    columns = {MARK: "", **config.columns()}
    styles = {"new": "bold green", "gone": "dim red strike"}
    frame = Text(no_wrap=True, overflow="crop")
    frame.append(
        f"netlab sockets{f' --port {config.port}' if config.port else ''}: every "
        f"{config.interval:g} s, {time.strftime('%H:%M:%S')}; Ctrl-C to leave\n\n",
        style="bold",
    )
    for line in tables.render(marked + gone, columns, config.fmt).splitlines():
        first_word = line.strip("|│┃ ").split(" ", 1)[0]
        frame.append(line + "\n", style=styles.get(first_word, ""))
    count_new = sum(1 for row in marked if row[MARK])
    frame.append(f"{summary(rows)}; {count_new} new, {len(gone)} gone since the last frame")
    return frame


# ---- Linux: the kernel's socket tables ---------------------------------------------------


def _linux_conns(config: SocketsConfig) -> tuple[list[Conn], bool]:
    conns = [conn for proto in KINDS[config.kind] for conn in _read_kernel_table(proto, config)]
    owners, hidden = _owners({conn.inode for conn in conns if conn.inode}, config.pid)
    conns = [conn._replace(pid=owners.get(conn.inode)) for conn in conns]
    if config.pid is not None:
        conns = [conn for conn in conns if conn.pid == config.pid]
    return conns, hidden and any(conn.inode and conn.pid is None for conn in conns)


def _read_kernel_table(proto: str, config: SocketsConfig) -> list[Conn]:
    """TCP over netlink, as ss reads it; /proc/net where netlink is refused, and for UDP."""
    if proto in _DIAG_FAMILIES:
        try:
            return list(_sock_diag(proto, config))
        except OSError:
            pass  # no sock_diag here (a container may refuse it): the text table serves
    return list(_read_proc_net(proto, config))


# sock_diag (linux/inet_diag.h): a dump of the kernel's TCP sockets in binary, with the states
# filtered in the kernel. It skips the 10,000 lines of text /proc/net/tcp makes the kernel
# format, which was most of the time of `netlab sockets` on a busy machine.
_DIAG_FAMILIES = {"tcp": socket.AF_INET, "tcp6": socket.AF_INET6}
_NETLINK_SOCK_DIAG, _SOCK_DIAG_BY_FAMILY = 4, 20
_NLM_F_REQUEST, _NLM_F_DUMP = 0x1, 0x300
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_NLMSG = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
_DIAG_REQUEST = struct.Struct("=BBBxI48x")  # family, protocol, extensions, states, socket id
_DIAG_PORTS = struct.Struct(">HH")  # source and destination port, network byte order
_DIAG_QUEUES = struct.Struct("=III4xI")  # expires, rqueue, wqueue, (uid), inode


def _sock_diag(proto: str, config: SocketsConfig) -> Iterator[Conn]:
    family = _DIAG_FAMILIES[proto]
    wanted = [n for n, name in enumerate(TCP_STATES) if name and config.wants_state(name)]
    states = sum(1 << n for n in wanted)
    request = _DIAG_REQUEST.pack(family, socket.IPPROTO_TCP, 0, states)
    if config.port:
        request += _port_filter(config.port)
    header = _NLMSG.pack(
        _NLMSG.size + len(request), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST | _NLM_F_DUMP, 1, 0
    )
    size = 4 if family == socket.AF_INET else 16
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as link:
        link.settimeout(5)
        link.sendall(header + request)
        while True:
            data = link.recv(1 << 20)
            at = 0
            while at + _NLMSG.size <= len(data):
                length, kind, _, _, _ = _NLMSG.unpack_from(data, at)
                if kind == _NLMSG_DONE:
                    return
                if kind == _NLMSG_ERROR or length < _NLMSG.size:
                    raise OSError("sock_diag refused the dump")
                body = at + _NLMSG.size  # struct inet_diag_msg
                local_port, remote_port = _DIAG_PORTS.unpack_from(data, body + 4)
                if not config.port or config.port in (local_port, remote_port):
                    state = _tcp_state(data[body + 1])
                    _, rqueue, wqueue, inode = _DIAG_QUEUES.unpack_from(data, body + 52)
                    local = socket.inet_ntop(family, data[body + 8 : body + 8 + size])
                    remote = socket.inet_ntop(family, data[body + 24 : body + 24 + size])
                    yield Conn(
                        proto,
                        Address(local, local_port),
                        Address(remote, remote_port) if remote_port else None,
                        state,
                        inode,
                        None,
                        rqueue,
                        # A listener's wqueue is its backlog limit; netstat shows 0 there.
                        0 if state == "LISTEN" else wqueue,
                    )
                at += (length + 3) & ~3


_INET_DIAG_REQ_BYTECODE, _BC_JMP, _BC_S_EQ, _BC_D_EQ = 1, 1, 11, 12
_BC_OP = struct.Struct("=BBH")  # code, bytes to skip when true, bytes to skip when false


def _port_filter(port: int) -> bytes:
    """Kernel-side ``sport == port or dport == port``, built as ss builds it, so that the
    sockets of other ports never leave the kernel. A program accepts by running exactly to its
    end and rejects by jumping 4 bytes past it; a port test is two ops, the second holding the
    port; every jump target must lie on the chain of "true" jumps (the kernel checks)."""
    program = (
        _BC_OP.pack(_BC_S_EQ, 8, 12)  # local port: on to the JMP; else to the remote test
        + _BC_OP.pack(0, 0, port)
        + _BC_OP.pack(_BC_JMP, 4, 12)  # always "false": jump to the end, accepted
        + _BC_OP.pack(_BC_D_EQ, 8, 12)  # remote port: to the end, accepted; else rejected
        + _BC_OP.pack(0, 0, port)
    )
    return struct.pack("=HH", 4 + len(program), _INET_DIAG_REQ_BYTECODE) + program


def _read_proc_net(proto: str, config: SocketsConfig) -> Iterator[Conn]:
    """Parse /proc/net/<proto>; lines the port filter drops are never decoded."""
    # Lines read: "sl local_address rem_address st tx_queue:rx_queue tr tm->when retrnsmt uid
    # timeout inode ...", addresses as hex "IP:PORT" with the IP in the host's byte order.
    # ":PORT " with its colon and space can only be the local or the remote port.
    port_hex = f":{config.port:04X} ".encode() if config.port else b""
    try:
        with open(f"/proc/net/{proto}", "rb") as table:
            # One read and a bytes search: with 10,000 sockets, a loop over text lines costs
            # more than the kernel takes to write them.
            lines = table.read().splitlines()[1:]  # without the header
    except FileNotFoundError:  # no IPv6 in this kernel
        return
    for raw_line in lines:
        if port_hex in raw_line:
            line = raw_line.decode("ascii")
            _, local, remote, state, queues, _, _, _, _, inode, *_ = line.split()
            state = _tcp_state(int(state, 16)) if proto.startswith("tcp") else NO_STATE
            if not config.wants_state(state):
                continue
            local_address, remote_address = _decode(local), _decode(remote)
            send_q, recv_q = (int(queue, 16) for queue in queues.split(":"))
            yield Conn(
                proto,
                local_address,
                remote_address if remote_address.port else None,
                state,
                int(inode),
                None,
                recv_q,
                send_q,
            )


def _tcp_state(number: int) -> str:
    # A state a newer kernel adds is shown by its number rather than ending the listing.
    return TCP_STATES[number] if 0 < number < len(TCP_STATES) else f"STATE_{number}"


def _decode(hex_address: str) -> Address:
    """ "0100007F:D903" -> ("127.0.0.1", 55555); IPv6 is four 32-bit words in host order."""
    hex_ip, hex_port = hex_address.split(":")
    words = [int(hex_ip[i : i + 8], 16) for i in range(0, len(hex_ip), 8)]
    family = socket.AF_INET if len(words) == 1 else socket.AF_INET6
    return Address(
        socket.inet_ntop(family, struct.pack(f"={len(words)}I", *words)), int(hex_port, 16)
    )


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


def _psutil_conns(config: SocketsConfig) -> tuple[list[Conn], bool]:
    import psutil

    kinds = {
        (socket.AF_INET, socket.SOCK_STREAM): "tcp",
        (socket.AF_INET6, socket.SOCK_STREAM): "tcp6",
        (socket.AF_INET, socket.SOCK_DGRAM): "udp",
        (socket.AF_INET6, socket.SOCK_DGRAM): "udp6",
    }
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
            kinds[(c.family, c.type)],
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


# ---- rows -----------------------------------------------------------------------------------


def _sort_key(conn: Conn) -> tuple:
    # Then by remote address, so that the server's ends of its connections keep one order.
    ip = ipaddress.ip_address(conn.local.ip)
    remote = (
        (ipaddress.ip_address(conn.remote.ip).packed, conn.remote.port) if conn.remote else None
    )
    return (conn.state != "LISTEN", ip.version, ip, conn.local.port, remote or (b"", 0))


def _rows(conns: Iterable[Conn], config: SocketsConfig) -> list[dict[str, Any]]:
    from netlab.status import format_address, nick_map

    nicks = nick_map()
    names: dict[int, str | None] = {}
    rows = []
    for conn in conns:
        local = format_address(*conn.local)
        remote = format_address(*conn.remote) if conn.remote else None
        if conn.pid is not None and conn.pid not in names:
            names[conn.pid] = _process_name(conn.pid)
        row = {
            "proto": conn.proto,
            "recv_q": conn.recv_q,
            "send_q": conn.send_q,
            "local": local,
            "remote": remote,
            "state": conn.state,
            "pid": conn.pid,
            "process": names.get(conn.pid) if conn.pid is not None else None,
            "side": _side(conn, config.port),
            # The status file names the server-side end; the client-side end is its mirror.
            "nick": (nicks.get((local, remote)) or nicks.get((remote, local))) if remote else None,
        }
        if config.port is None:
            del row["side"]
        rows.append(row)
    return rows


def _side(conn: Conn, port: int | None) -> str | None:
    if port is None:
        return None
    if conn.local.port == port:
        return "server"
    return "client"


def _process_name(pid: int) -> str | None:
    import psutil

    try:
        return psutil.Process(pid).name()
    except psutil.Error:
        return None
