"""``netlab sockets``: netstat for the chat port, with the nicknames behind the connections.

    config = SocketsConfig(port=55555)
    rows = snapshot(config).rows       # list of dicts with the JSON keys of `netlab sockets`
    print(render(rows, config))        # what `netlab sockets --port 55555 | cat` prints

This module is the command (its options and its run); the parts are in netlab/sockets/:
the socket sources (``kernel``: netlink sock_diag and /proc/net; ``sources``: psutil elsewhere,
owners, program names), the rows (``rows``: nicknames from the status files, the summary),
``explain`` (``--explain``) and ``view`` (the table fitted to the terminal, ``--watch``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable

from netlab import tables
from netlab.sockets.config import KINDS, STATES, TCP_STATES, SocketsConfig
from netlab.sockets.rows import Snapshot, snapshot, summary
from netlab.sockets.view import render

__all__ = ["STATES", "TCP_STATES", "Snapshot", "SocketsConfig", "render", "snapshot", "summary"]

HIDDEN_OWNERS = (
    "netlab sockets: some sockets belong to other users' processes, whose PID and program the "
    "system shows only to root; they are marked '-'. Run it with sudo to see them."
)


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
    add = parse.add_argument
    add(
        "-p",
        "--port",
        type=int,
        metavar="N",
        help="keep sockets whose local or remote port is N (the LISTEN socket and both ends of "
        "each connection), and add the Side column",
    )
    add(
        "-s",
        "--state",
        action="append",
        metavar="STATE",
        help="keep sockets in this TCP state (repeatable), e.g. TIME_WAIT, CLOSE_WAIT; "
        "default: LISTEN and ESTABLISHED",
    )
    add("-a", "--all", action="store_true", dest="all_states", help="keep sockets in every state")
    add("--pid", type=int, metavar="N", help="keep the sockets of this process")
    add("--kind", default="tcp", help=f"which sockets: {', '.join(KINDS)} (default: tcp)")
    add(
        "-f",
        "--format",
        default=tables.TABLE,
        dest="fmt",
        help="table (for people, the default), json, csv, or any tabulate format: github, "
        "grid, plain, ...",
    )
    add(
        "--explain",
        action="store_true",
        help="say each socket in words instead of the table: whose end of which connection, "
        "and what its state means",
    )
    add(
        "--wide",
        action="store_true",
        help="every column even where the terminal is narrower (a narrow terminal drops Proto, "
        "then PID, ... but never Nick or State; a pipe always gets every column)",
    )
    add(
        "-w",
        "--watch",
        action="store_true",
        help="redraw in place, marking new and gone sockets; Ctrl-C ends",
    )
    add(
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
            wide=options.wide,
            explain=options.explain,
        )
    except ValueError as error:
        parse.error(str(error))
    return run(config)


def run(config: SocketsConfig) -> int:
    """``netlab sockets``: print once, or keep a live view with ``--watch``."""
    if config.watch:
        from netlab.sockets.view import watch

        return watch(config, _take(config))
    rows = _take(config)()
    print(render(rows, config, terminal_width(config)))
    return 0


def terminal_width(config: SocketsConfig) -> int | None:
    """The width to fit the table to: the terminal's, unless ``--wide`` or not a terminal."""
    if config.wide or not sys.stdout.isatty():
        return None
    return shutil.get_terminal_size().columns


def _take(config: SocketsConfig) -> Callable[[], list[dict]]:
    def take() -> list[dict]:
        taken = snapshot(config)
        warn_hidden_owners(taken)
        return taken.rows

    return take


_warned = False


def warn_hidden_owners(taken: Snapshot) -> None:
    """Say once per process, on stderr, why some PIDs and programs are '-'."""
    global _warned
    if taken.hidden_owners and not _warned:
        _warned = True
        print(HIDDEN_OWNERS, file=sys.stderr)
