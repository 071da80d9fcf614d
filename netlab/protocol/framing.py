"""Framing: a byte stream into messages, for each way a peer may cut it.

* ``LineDecoder``: ``\\n`` or ``\\r\\n`` terminated lines (line clients, netlab serve);
* ``ChunkDecoder``: the handout client's one message per ``send()``, no terminator;
* ``HandoutReader``: what the handout's *server* relays, with no framing at all.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import Literal

from netlab.protocol.texts import ENCODING


def decode(data: bytes) -> str:
    """Bytes from the wire as text: broken UTF-8 becomes U+FFFD, never an exception."""
    return data.decode(ENCODING, errors="replace")


def encode_line(text: str) -> bytes:
    return (text + "\n").encode(ENCODING)


# -- events ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Line:
    """One complete message: a line of a line client, or a receive of a handout client."""

    text: str


@dataclass(frozen=True, slots=True)
class LineTooLong:
    """A line over the limit was discarded (up to and including its newline)."""

    limit: int


Event = Line | LineTooLong


# -- framing -----------------------------------------------------------------------------


class LineDecoder:
    """Splits a byte stream into ``\\n`` or ``\\r\\n`` terminated lines.

    The result does not depend on how the stream was split into chunks. A line longer than
    ``max_line_bytes`` (without its terminator) is reported once as ``LineTooLong`` and skipped
    up to its newline, so memory stays bounded by the limit whatever the peer sends.
    """

    def __init__(self, max_line_bytes: int = 4096) -> None:
        self.max_line_bytes = max_line_bytes
        self._buffer = bytearray()
        self._discarding = False

    def feed(self, data: bytes) -> list[Event]:
        buffer = self._buffer
        buffer += data
        events: list[Event] = []
        start = 0
        limit = self.max_line_bytes
        while (end := buffer.find(b"\n", start)) >= 0:
            stop = end - 1 if end > start and buffer[end - 1] == 0x0D else end
            if self._discarding:
                self._discarding = False
            elif stop - start > limit:
                events.append(LineTooLong(limit))
            else:
                events.append(Line(decode(buffer[start:stop])))
            start = end + 1
        if start:
            del buffer[:start]
        # A trailing CR may be the first half of CRLF: it does not count against the limit yet.
        pending = len(buffer) - (1 if buffer.endswith(b"\r") else 0)
        if pending > limit:
            if not self._discarding:
                events.append(LineTooLong(limit))
                self._discarding = True
            buffer.clear()
        return events

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete line."""
        return len(self._buffer)


_LINE_BREAK = re.compile(r"\r?\n|\r")


_HANDOUT_STAMP = r"(?=\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] )"
"""Where a message formatted by the handout's client begins: ``[YYYY-MM-DD HH:MM:SS] ``."""

_HANDOUT_MESSAGE = re.compile(_HANDOUT_STAMP + r"|\r?\n|\r")


class ChunkDecoder:
    """The handout's framing: each send is one message, with no terminator.

    A receive is one message, unless the client sent faster than the server read and TCP
    merged several into one receive: each message of the handout's client begins with its
    ``[YYYY-MM-DD HH:MM:SS] `` stamp, so a receive is cut where another one begins (and where
    a client put a line break), and the line limit holds for each message, not for the
    receive. A receive that ends in the middle of a UTF-8 character is not a whole message:
    the kernel cut one send in two, so it is joined with the next receive, character and all.
    """

    def __init__(self, max_line_bytes: int = 4096) -> None:
        self.max_line_bytes = max_line_bytes
        self._utf8 = codecs.getincrementaldecoder(ENCODING)(errors="replace")
        self._cut = b""  # a receive that ended mid-character, waiting for its rest

    def feed(self, data: bytes) -> list[Event]:
        data = self._cut + data if self._cut else data
        self._cut = b""
        text = self._utf8.decode(data)
        pending = self._utf8.getstate()[0]  # bytes of a character still to come
        self._utf8.reset()
        parts = [part for part in _HANDOUT_MESSAGE.split(text) if part]
        limit = self.max_line_bytes
        events: list[Event] = []
        if pending:  # the last message goes on in the next receive: held, its character too
            last = parts.pop() if parts and not text.endswith(("\n", "\r")) else ""
            self._cut = last.encode(ENCODING) + pending
            if len(self._cut) > limit:
                self._cut = b""
                events.append(LineTooLong(limit))
        if len(data) <= limit:  # the usual case: no part can be over
            return [Line(part) for part in parts] + events
        return [
            LineTooLong(limit) if len(part.encode(ENCODING)) > limit else Line(part)
            for part in parts
        ] + events


Framing = Literal["line", "handout"]
"""How a registered server-side connection frames its messages."""


HANDOUT_RECV_SIZE = 1024
"""The handout server relays each ``recv(1024)`` as it came."""

_HANDOUT_BOUNDARY = re.compile(
    _HANDOUT_STAMP  # a message formatted by the handout client
    + r"|(?<=joined the chat!)|(?<=left the chat\.)|(?<=Connected to server!)"  # notices
    + r"|\r?\n"
)


class HandoutReader:
    """Splits what the handout's server sends into messages.

    That server has no framing: two messages may arrive in one receive, and a message longer
    than its 1024-byte receive arrives in parts. Messages are cut where one formatted by the
    handout's client begins, after its notices and at newlines. A receive of exactly 1024 bytes
    may be continued by the next one, so its last piece is held until more arrives or
    ``flush`` is called.

    The held piece never grows past ``max_message`` characters: an unbroken stream (2 MiB
    pasted with no newline) comes out in pieces, so each receive costs time in proportion to
    itself, not to everything held before it (it was quadratic: 2 MiB took 113 s of CPU).
    """

    MAX_MESSAGE = 8192

    def __init__(self, max_message: int = MAX_MESSAGE) -> None:
        self._utf8 = codecs.getincrementaldecoder(ENCODING)(errors="replace")
        self._held = ""
        self.max_message = max_message

    def feed(self, data: bytes) -> list[str]:
        text = self._held + self._utf8.decode(data)
        self._held = ""
        parts = [p for p in _HANDOUT_BOUNDARY.split(text) if p]
        if len(data) >= HANDOUT_RECV_SIZE and parts:
            self._held = parts.pop()
            if len(self._held) >= self.max_message:
                parts.append(self._held)
                self._held = ""
        return parts

    def flush(self) -> list[str]:
        held, self._held = self._held, ""
        return [held] if held else []
