"""One snapshot of the sockets as rows with the JSON keys, nicknames on both ends, a summary."""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from netlab import status
from netlab.net import format_address, parse_address, unmapped
from netlab.sockets import sources
from netlab.sockets.config import STATES, Conn, SocketsConfig

Row = dict[str, Any]


@dataclass
class Snapshot:
    rows: list[Row]
    hidden_owners: bool = False  # some owners exist but the system would not tell who


def snapshot(config: SocketsConfig) -> Snapshot:
    """The sockets ``config`` asks for, as rows with exactly the JSON keys, sorted LISTEN
    first, then by local address."""
    conns, hidden = sources.gather(config)
    conns.sort(key=_sort_key)
    return Snapshot(_rows(conns, config), hidden)


# The summary counts states in a fixed order, the listener first, as the rows come.
_STATE_ORDER = {state: n for n, state in enumerate(dict.fromkeys(("LISTEN", *STATES)))}


def summary(rows: list[Row]) -> str:
    """``5 sockets: 1 LISTEN, 4 ESTABLISHED; 2 connections`` (both ends of one count once)."""
    states = Counter(row["state"] for row in rows)
    connections = {
        frozenset((pair_key(row["local"]), pair_key(row["remote"])))
        for row in rows
        if row["remote"]
    }
    counted = sorted(states.items(), key=lambda item: _STATE_ORDER.get(item[0], len(STATES)))
    by_state = ", ".join(f"{count} {state}" for state, count in counted)
    plural = "" if len(rows) == 1 else "s"
    joined = f"{len(connections)} connection{'' if len(connections) == 1 else 's'}"
    return f"{len(rows)} socket{plural}: {by_state or 'none'}; {joined}"


def pair_key(address: str) -> str:
    """The address as both ends of a connection name it: behind a dual-stack ``::`` listener
    the server's end sees an IPv4 client as ``[::ffff:127.0.0.1]:PORT`` while the client's end
    says ``127.0.0.1:PORT``; both become the latter."""
    if "::ffff:" not in address:
        return address  # the usual case, without a parse
    try:
        host, port = parse_address(address)
    except ValueError:  # a status file's text that is no address: it pairs with nothing
        return address
    return format_address(unmapped(host), port)


def _sort_key(conn: Conn) -> tuple:
    # Then by remote address, so that the server's ends of its connections keep one order.
    ip = ipaddress.ip_address(conn.local.ip)
    remote = (
        (ipaddress.ip_address(conn.remote.ip).packed, conn.remote.port) if conn.remote else None
    )
    return (conn.state != "LISTEN", ip.version, ip, conn.local.port, remote or (b"", 0))


def _rows(conns: Iterable[Conn], config: SocketsConfig) -> list[Row]:
    conns = list(conns)
    # The status files name the server's end; the client's end is its mirror.
    nicks = {(pair_key(a), pair_key(b)): nick for (a, b), nick in status.nick_map().items()}
    names = sources.process_names(conn.pid for conn in conns if conn.pid is not None)
    rows = []
    for conn in conns:
        local = format_address(*conn.local)
        remote = format_address(*conn.remote) if conn.remote else None
        ends = (pair_key(local), pair_key(remote)) if remote else None
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
            "nick": (nicks.get(ends) or nicks.get(ends[::-1])) if ends else None,
        }
        if config.port is None:
            del row["side"]
        rows.append(row)
    return rows


def _side(conn: Conn, port: int | None) -> str | None:
    if port is None:
        return None
    return "server" if conn.local.port == port else "client"
