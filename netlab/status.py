"""Who is behind which connection: the status file a ``netlab serve`` publishes for local tools.

A running server keeps ``<runtime dir>/serve-<pid>.json`` up to date (``StatusWriter``: at
once on the first change, then at most a few times a second, atomically) and removes it at
exit. ``netlab sockets`` reads every such file to put a nickname beside both ends of a chat
connection. The runtime dir is ``$XDG_RUNTIME_DIR/netlab`` where that is set, else
``<tmp>/netlab-<uid>``, made private to the user (mode 0700).

The directory is used only when it is trusted, by tmux's rule: a real directory (not a
symlink), owned by this user, with no permission for group or others. In a shared /tmp
another user could create ``netlab-<uid>`` first, then delete or plant files in it (a
nickname with terminal escapes, say). Otherwise a warning is logged once and the server runs
without a status file, ``netlab sockets`` without nicknames. Files are opened with
O_NOFOLLOW.

The file, documented in docs/protocol.md::

    {"pid": 1234, "listen": ["127.0.0.1:55555"], "started": 1764110000.0,
     "clients": [{"nick": "alice", "local": "127.0.0.1:55555", "remote": "127.0.0.1:40312"}]}
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # neither is imported at run time: netlab sockets reads this module
    import asyncio
    import logging


MAX_BYTES = 64 << 20  # a status file larger than a room of 500,000 is not one of ours
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_warned: set[str] = set()


def _log() -> logging.Logger:
    # logging is imported on the first warning: netlab sockets starts without it.
    import logging

    return logging.getLogger("netlab.status")


def runtime_dir() -> Path:
    """Where the status files live (whether or not it exists or can be trusted)."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and os.path.isdir(base):
        return Path(base) / "netlab"
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"netlab-{uid}"


def trusted_dir(create: bool = False) -> Path | None:
    """The runtime dir if it passes tmux's rule (made first when ``create``), else None
    (logged once per directory when it exists and fails)."""
    path = runtime_dir()
    if create:
        with contextlib.suppress(OSError):  # an error shows in the lstat below
            path.mkdir(mode=0o700, exist_ok=True)
    try:
        info = os.lstat(path)
    except OSError:
        return None  # no directory yet: no server has run
    problem = _distrust(info)
    if problem is None:
        return path
    if str(path) not in _warned:
        _warned.add(str(path))
        _log().warning("not using %s for netlab's status files: it %s", path, problem)
    return None


def _distrust(info: os.stat_result) -> str | None:
    if not stat.S_ISDIR(info.st_mode):
        return "is a symbolic link" if stat.S_ISLNK(info.st_mode) else "is not a directory"
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        return f"belongs to another user (uid {info.st_uid})"
    if info.st_mode & 0o077:
        return f"is open to other users (mode {stat.S_IMODE(info.st_mode):o}, wants 700)"
    return None


def status_path(pid: int | None = None) -> Path:
    return runtime_dir() / f"serve-{pid or os.getpid()}.json"


def write_status(document: dict[str, Any], path: Path | None = None) -> Path | None:
    """Replace the status file in one step, so a reader never sees half of it. Without
    ``path``: in the runtime dir, or nowhere (None) when that cannot be trusted."""
    if path is None:
        directory = trusted_dir(create=True)
        if directory is None:
            return None
        path = directory / status_path().name
    else:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}-{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
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
        (path or status_path()).unlink()  # unlink never follows a symlink


def read_all() -> list[dict[str, Any]]:
    """The status of every live ``netlab serve`` of this user; stale files are skipped."""
    directory = trusted_dir()
    if directory is None:
        return []
    import psutil  # here, not at the top: every `netlab serve` imports this module

    found = []
    for path in sorted(directory.glob("serve-*.json")):
        document = _read(path)
        with contextlib.suppress(KeyError, TypeError, ValueError, OverflowError):
            if psutil.pid_exists(int(document["pid"])):
                found.append(document)
    return found


def _read(path: Path) -> Any:
    """The JSON of a regular file of this user's, or None (a FIFO, a link, too big, bad)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | _NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as source:
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_BYTES:
                return None
            return json.loads(source.read(MAX_BYTES))
        except (OSError, ValueError, RecursionError):
            return None


def nick_map() -> dict[tuple[str, str], str]:
    """``{(local, remote): nick}`` for the server-side end of every chat connection on this
    machine; the client-side end is the same pair reversed."""
    mapping: dict[tuple[str, str], str] = {}
    for document in read_all():
        clients = document.get("clients") if isinstance(document, dict) else None
        for client in clients if isinstance(clients, list) else []:
            with contextlib.suppress(KeyError, TypeError, AttributeError):
                ends, nick = (client["local"], client["remote"]), client["nick"]
                if all(isinstance(text, str) for text in (*ends, nick)):
                    mapping[ends] = nick
    return mapping


class StatusWriter:
    """Keeps a server's status file in step with its room.

    ``changed()`` after each join or leave: the first change writes at once (a nickname shows
    in ``netlab sockets`` right after the welcome), and only the rewrites that follow are
    spaced, by at least ``MIN_INTERVAL`` or longer for a crowd, since each write is O(room).
    A failed write (EMFILE at the open-file limit, a full disk) is logged once and retried
    until one succeeds. ``close()`` stops and removes the file."""

    MIN_INTERVAL = 0.2  # seconds between rewrites
    CLIENTS_PER_SECOND = 2000  # a room of 4,000 is rewritten every 2 s at most
    RETRY = 1.0  # seconds before a failed write is tried again

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        document: Callable[[], dict[str, Any]],
        enabled: bool = True,
        path: Path | None = None,
    ) -> None:
        self.loop, self.document, self.enabled, self.path = loop, document, enabled, path
        self._timer: asyncio.TimerHandle | None = None
        self._next = float("-inf")  # loop time before which no rewrite happens
        self._failing = False

    def changed(self) -> None:
        """The room changed: write now, or once the spacing since the last write allows."""
        if not self.enabled or self._timer is not None:
            return  # a write is due already and will see this change too
        wait = self._next - self.loop.time()
        if wait <= 0:
            self._write(spaced=True)
        else:
            self._timer = self.loop.call_later(wait, self._write, True)

    def write(self) -> None:
        """Publish the document now, outside the spacing: the server's first one, at start,
        does not delay the first join's."""
        self._cancel()
        self._write(spaced=False)

    def close(self) -> None:
        """Stop writing and remove the file."""
        self._cancel()
        if self.enabled:
            self.enabled = False
            remove_status(self.path)

    def _write(self, spaced: bool) -> None:
        self._timer = None
        if not self.enabled:
            return
        document = self.document()
        try:
            write_status(document, self.path)
        except OSError as error:
            if not self._failing:
                _log().warning("cannot write the status file, retrying: %s", error)
            self._failing = True
            self._timer = self.loop.call_later(self.RETRY, self._write, spaced)
            return
        if self._failing:
            _log().info("the status file is written again")
        self._failing = False
        if spaced:
            clients = document.get("clients") or ()
            spacing = max(self.MIN_INTERVAL, len(clients) / self.CLIENTS_PER_SECOND)
            self._next = self.loop.time() + spacing

    @property
    def failing(self) -> bool:
        """The last write failed; another is due."""
        return self._failing

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
