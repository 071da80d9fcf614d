"""What ``netlab sockets`` was asked for, and the names it shows (states, kinds, columns)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from netlab import bounds, tables

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
MACHINE_FORMATS = ("json", "csv")  # one-off output for scripts: no summary, no --watch

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
    wide: bool = False  # every column whatever the terminal's width
    explain: bool = False  # each row in words instead of the table

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
        if self.watch and self.fmt in MACHINE_FORMATS:
            raise ValueError(f"--watch draws a table; --format {self.fmt} is for one-off output")
        if self.explain and self.fmt != tables.TABLE:
            raise ValueError(f"--explain writes sentences, not --format {self.fmt}")
        if not bounds.positive(self.interval):
            raise ValueError("--interval must be a number of seconds more than 0")

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
