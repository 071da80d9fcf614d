"""A small recording peer for ``netlab check``: raw sockets and a wire log with times.

Every byte a peer sends or receives is noted in the case's ``WireLog`` (what, who, when), so a
report can show what happened on the wire. Peers speak the lab's protocols only as far as a
case needs: the handshake (``NICK``, then the nickname bare or with a newline), a message as
the protocol's client sends it, and its way of leaving. Waiting is always on a condition
(bytes arrived, the stream ended) with a deadline, never a fixed sleep: ``wait`` reads every
peer that has something while it checks the condition, so no peer's buffer stalls the others.
"""

from __future__ import annotations

import contextlib
import select
import selectors
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

from netlab import net
from netlab import protocol as p

MAX_LOG_ENTRIES = 400
PREVIEW = 160  # characters of data kept per log entry


class WireLog:
    """What each side sent and got, with seconds since the case began."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.entries: list[dict[str, Any]] = []
        self.dropped = 0

    def add(self, peer: str, event: str, data: bytes | str = b"", size: int | None = None) -> None:
        if len(self.entries) >= MAX_LOG_ENTRIES:
            self.dropped += 1  # an 8 MB case must not make an 8 MB report
            return
        text = p.decode(data) if isinstance(data, bytes) else data
        entry: dict[str, Any] = {"t": round(time.monotonic() - self.start, 4), "peer": peer}
        entry["event"] = event
        if size is not None or data:
            entry["bytes"] = size if size is not None else len(data)
        if text:
            entry["data"] = text if len(text) <= PREVIEW else text[:PREVIEW] + "..."
        self.entries.append(entry)

    def export(self) -> list[dict[str, Any]]:
        if self.dropped:
            note = f"{self.dropped} more entries not kept"
            return [*self.entries, {"t": None, "peer": "netlab", "event": "note", "data": note}]
        return list(self.entries)


class Refused(Exception):
    """The server spoke (or closed) instead of sending the ``NICK`` prompt."""

    def __init__(self, text: str, closed: bool) -> None:
        super().__init__(text)
        self.text, self.closed = text, closed


class Peer:
    """One client connection of a case, reading into ``received`` (every byte, in order)."""

    def __init__(self, sock: socket.socket, name: str, protocol: str, log: WireLog) -> None:
        self.sock, self.name, self.protocol, self.log = sock, name, protocol, log
        self.nick = name
        self.received = bytearray()
        self.eof = False  # the stream ended (FIN, RST or our own close)
        self.was_reset = False
        self.closed = False
        self.paused = False  # a reader that stopped reading: wait() leaves it alone
        sock.setblocking(False)

    @classmethod
    def connect(
        cls, host: str, port: int, name: str, protocol: str, log: WireLog, timeout: float
    ) -> Peer:
        sock = socket.create_connection((host, port), timeout=timeout)
        log.add(name, "connect", f"{sock.getsockname()[1]} -> {port}")
        return cls(sock, name, protocol, log)

    # -- what the peer sends ------------------------------------------------------------

    def send(self, data: bytes, note: str | None = None) -> None:
        """All of ``data`` (blocking while the kernel's buffer is full)."""
        send_all(self.sock, data)
        self.log.add(self.name, "send", note if note is not None else data, size=len(data))

    def send_split(self, parts: Iterable[bytes], gap: float) -> None:
        """Each part in its own TCP segment, ``gap`` seconds apart (Nagle off, so that the
        kernel does not merge them: the split is what the case is about)."""
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for index, part in enumerate(parts):
            if index:
                time.sleep(gap)  # the gap is the measurement, not a wait for a condition
            self.send(part)

    def message(self, text: str) -> bytes:
        """``text`` as this protocol's client sends a chat message: the handout's client
        stamps and signs it and sends no newline; line clients send a line."""
        if self.protocol == "handout":
            return p.handout_message(self.nick, text).encode(p.ENCODING)
        return p.encode_line(text)

    def say(self, text: str) -> None:
        self.send(self.message(text))

    def leaving(self) -> bytes:
        """How this protocol's client says it leaves (nothing for a plain line chat)."""
        if self.protocol == "handout":
            return p.handout_leaving(self.nick).encode(p.ENCODING)
        if self.protocol == "netlab":
            return p.encode_line("/quit")
        return b""

    # -- ending ---------------------------------------------------------------------------

    def reset(self) -> None:
        """An abrupt close: SO_LINGER 0 makes the kernel send RST instead of FIN."""
        if self.closed:
            return
        net.reset(self.sock)
        self.closed = self.eof = True
        self.log.add(self.name, "RST")

    def finish(self) -> None:
        """The first half of a polite close: read what has arrived, then send FIN."""
        if self.closed:
            return
        self.drain()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)
            self.log.add(self.name, "FIN")

    def close(self) -> None:
        """Close after reading what is there: with unread bytes the kernel would send RST."""
        if self.closed:
            return
        self.drain()
        self.sock.close()
        self.closed = self.eof = True
        self.log.add(self.name, "close")

    # -- what the peer receives ---------------------------------------------------------

    def drain(self) -> None:
        while not self.eof and self.read_ready():
            pass

    def read_ready(self) -> bool:
        """Read once without blocking; False when nothing was there."""
        try:
            data = self.sock.recv(1 << 20)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:
            self.eof = True
            self.was_reset = isinstance(exc, ConnectionResetError)
            self.log.add(self.name, "reset by server" if self.was_reset else f"error {exc}")
            return False
        if not data:
            self.eof = True
            self.log.add(self.name, "EOF")
            return False
        self.received += data
        self.log.add(self.name, "recv", data)
        return True

    def text(self, start: int = 0) -> str:
        return p.decode(bytes(self.received[start:]))

    def has(self, needle: str | bytes, start: int = 0) -> bool:
        raw = needle.encode(p.ENCODING) if isinstance(needle, str) else needle
        return self.received.find(raw, start) >= 0

    def count(self, needle: str, start: int = 0) -> int:
        return self.text(start).count(needle)


def send_all(sock: socket.socket, data: bytes, timeout: float = 30.0) -> None:
    """``sendall`` on a non-blocking socket (another thread may be reading it): waits for room
    in the kernel's buffer; TimeoutError when none comes within ``timeout``."""
    view = memoryview(data)
    while view:
        try:
            view = view[sock.send(view) :]
        except (BlockingIOError, InterruptedError):
            if not select.select([], [sock], [], timeout)[1]:
                raise TimeoutError(f"no room to send for {timeout:g} s") from None


def wait(peers: Iterable[Peer], done: Callable[[], bool], timeout: float) -> bool:
    """Read every peer that has data until ``done()`` or ``timeout``; returns ``done()``."""
    deadline = time.monotonic() + timeout
    live = [peer for peer in peers if not peer.closed and not peer.paused]
    with selectors.DefaultSelector() as selector:
        for peer in live:
            if not peer.eof:
                selector.register(peer.sock, selectors.EVENT_READ, peer)
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return done()
            # A short cap: some conditions are not about sockets (a process exited).
            for key, _ in selector.select(min(remaining, 0.05)):
                peer = key.data
                peer.read_ready()
                if peer.eof:
                    selector.unregister(peer.sock)
    return True


def handshake(peer: Peer, nick: str, others: Iterable[Peer], timeout: float) -> None:
    """Answer the prompt with ``nick`` and wait for the welcome (``Connected to server!``).

    Raises Refused when the server says something else first or closes, TimeoutError when it
    says nothing. A plain line chat (``lines``) has no handshake."""
    others = list(others)
    offer(peer, nick, others, timeout)
    welcomed(peer, others, timeout)


def offer(peer: Peer, nick: str, others: Iterable[Peer], timeout: float) -> None:
    """The first half of ``handshake``: wait for the prompt, answer it with ``nick``."""
    peer.nick = nick
    if peer.protocol == "lines":
        return
    group = [peer, *others]
    wait(group, lambda: len(peer.received) >= len(p.PROMPT) or peer.eof, timeout)
    head = bytes(peer.received[: len(p.PROMPT)])
    if head != p.PROMPT:
        if not head and not peer.eof:
            raise TimeoutError(f"no NICK prompt within {timeout:g} s")
        wait(group, lambda: peer.eof or b"\n" in peer.received, min(timeout, 1.0))
        raise Refused(peer.text().strip(), peer.eof)
    answer = nick if peer.protocol == "handout" else nick + "\n"
    peer.send(answer.encode(p.ENCODING))


def welcomed(peer: Peer, others: Iterable[Peer], timeout: float) -> None:
    """The second half of ``handshake``: wait for the welcome to the nickname offered."""
    if peer.protocol == "lines":
        return
    group = [peer, *others]
    connected = p.CONNECTED.encode()
    if not wait(group, lambda: peer.has(connected) or peer.eof, timeout):
        raise TimeoutError(f"no {p.CONNECTED!r} within {timeout:g} s of the nickname")
    if not peer.has(connected):
        raise Refused(peer.text(len(p.PROMPT)).strip(), True)
