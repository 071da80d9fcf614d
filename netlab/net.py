"""Addresses and the abrupt close: the one home for what every command does with a socket.

``HOST:PORT`` is how netlab writes and reads an address everywhere (options, tables, logs, the
status file); IPv6 goes in brackets, ``[::1]:55555``, so the port can always be told apart.
"""

from __future__ import annotations

import contextlib
import re
import socket
import struct
from typing import Any

_ADDRESS = re.compile(r"\[([^\]]+)\]:(\d+)|([^:\s\[\]]+):(\d+)")
_LINGER_RESET = struct.pack("ii", 1, 0)


def format_address(host: str, port: int) -> str:
    """``127.0.0.1:55555``, and ``[::1]:55555`` for IPv6."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` as (host, port); ValueError says what is wrong."""
    m = _ADDRESS.fullmatch(text.strip())
    if not m:
        raise ValueError(f"bad address {text!r}: write HOST:PORT, such as 127.0.0.1:55555")
    host, port = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"bad address {text!r}: the port must be 1-65535")
    return host, int(port)


def parse_targets(text: str) -> list[tuple[str, int]]:
    """``HOST:PORT,HOST:PORT`` (one or more) as a list of (host, port)."""
    parts = [part for part in text.split(",") if part.strip()]
    if not parts:
        raise ValueError("bad address '': write HOST:PORT, such as 127.0.0.1:55555")
    return [parse_address(part) for part in parts]


def unmapped(host: str) -> str:
    """``::ffff:127.0.0.1`` (an IPv4 peer of a dual-stack listener) as ``127.0.0.1``."""
    return host[7:] if host.startswith("::ffff:") and "." in host else host


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on ``host`` right now (the kernel's pick), for a child told where to listen."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def reset_on_close(sock: socket.socket) -> None:
    """Make every close of ``sock`` a reset (SO_LINGER 0), set now: even a close by the kernel
    when the process dies of a signal sends RST."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)


def reset(conn: Any) -> None:
    """Close with a RST instead of a FIN (SO_LINGER 0): no TIME_WAIT is left behind, and the
    peer sees ``ECONNRESET``, as when a process dies or a cable is cut.

    ``conn`` is a ``socket.socket`` or an asyncio transport. ``transport.abort()`` alone sends a
    FIN: the kernel only resets when the socket lingers with a zero timeout."""
    sock = conn if isinstance(conn, socket.socket) else conn.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            reset_on_close(sock)
    if isinstance(conn, socket.socket):
        conn.close()
    else:
        conn.abort()
