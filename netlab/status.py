"""Who is behind which connection: the status file a ``netlab serve`` publishes for local tools.

A running server keeps ``<runtime dir>/serve-<pid>.json`` up to date (written on joins and
leaves, at most a few times a second, atomically) and removes it at exit. ``netlab sockets``
reads every such file to put a nickname beside both ends of a chat connection. The runtime
dir is ``$XDG_RUNTIME_DIR/netlab`` where that is set, else ``<tmp>/netlab-<uid>``; it is made
private to the user (mode 0700), as nicknames and addresses are nobody else's business.

The file, documented in docs/protocol.md::

    {"pid": 1234, "listen": ["127.0.0.1:55555"], "started": 1764110000.0,
     "clients": [{"nick": "alice", "local": "127.0.0.1:55555", "remote": "127.0.0.1:40312"}]}
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import psutil


def runtime_dir() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and os.path.isdir(base):
        return Path(base) / "netlab"
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"netlab-{uid}"


def status_path(pid: int | None = None) -> Path:
    return runtime_dir() / f"serve-{pid or os.getpid()}.json"


def format_address(host: str, port: int) -> str:
    """``127.0.0.1:55555``, and ``[::1]:55555`` for IPv6, as ``netlab sockets`` prints them."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def write_status(document: dict[str, Any], path: Path | None = None) -> Path:
    """Replace the status file in one step, so a reader never sees half of it."""
    path = path or status_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".serve-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(document, out, ensure_ascii=False)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def remove_status(path: Path | None = None) -> None:
    with contextlib.suppress(OSError):
        (path or status_path()).unlink()


def read_all() -> list[dict[str, Any]]:
    """The status of every live ``netlab serve`` of this user; stale files are skipped."""
    found = []
    directory = runtime_dir()
    if not directory.is_dir():
        return found
    for path in sorted(directory.glob("serve-*.json")):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            pid = int(document["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if psutil.pid_exists(pid):
            found.append(document)
    return found


def nick_map() -> dict[tuple[str, str], str]:
    """``{(local, remote): nick}`` for the server-side end of every chat connection on this
    machine; the client-side end is the same pair reversed."""
    mapping: dict[tuple[str, str], str] = {}
    for document in read_all():
        clients = document.get("clients") if isinstance(document, dict) else None
        for client in clients if isinstance(clients, list) else []:
            with contextlib.suppress(KeyError, TypeError):
                mapping[(client["local"], client["remote"])] = client["nick"]
    return mapping
