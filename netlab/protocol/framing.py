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

from netlab.protocol.texts import ENCODING, handout_leaving


def decode(data: bytes) -> str:
    """Bytes from the wire as text: broken UTF-8 becomes U+FFFD, never an exception."""
    return data.decode(ENCODING, errors="replace")


def encode_line(text: str) -> bytes:
    return (text + "\n").encode(ENCODING)


# -- events ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Line:
    """One complete message: a line of a line client, or a message of a handout client."""

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


_LINE_BREAKS = r"\r?\n|\r"
_HANDOUT_STAMP = r"(?=\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] )"
"""Where a message formatted by the handout's client begins: ``[YYYY-MM-DD HH:MM:SS] ``."""
_HANDOUT_MESSAGE = re.compile(_HANDOUT_STAMP + "|" + _LINE_BREAKS)
_HANDOUT_LEFT = handout_leaving("")
"""How the handout client's leaving, ``NICK has left the chat.`` (sent unstamped), ends: a
receive that ends so ends whole (the server takes it apart from what came before)."""


class ChunkDecoder:
    """The handout's framing: each send is one message, with no terminator.

    A receive is one message, unless the client sent faster than the server read and TCP
    merged several into one receive: every message of the handout's client begins with its
    ``[YYYY-MM-DD HH:MM:SS] `` stamp, so a receive is cut where another begins and at line
    breaks, and the line limit is each message's (its leaving, ``NICK has left the chat.``,
    is unstamped: the server finds it at the end of a message). The last message of a
    merged receive may go on in the next one (the read came in the middle of a send), as
    may a receive that ends in the middle of a UTF-8 character: that message is held
    (``holding``) and joined with what comes next, until a quiet spell ends it (``flush``,
    the session's clock). The rest of a held message that passed the limit is dropped up to
    where the next one begins.
    """

    def __init__(self, max_line_bytes: int = 4096) -> None:
        self.max_line_bytes = max_line_bytes
        self._utf8 = codecs.getincrementaldecoder(ENCODING)(errors="replace")
        self._held = b""  # the last message of a receive, perhaps continued by the next
        self._discarding = False  # dropping the rest of a held message over the limit

    @property
    def holding(self) -> bool:
        return bool(self._held)

    def feed(self, data: bytes) -> list[Event]:
        data = self._held + data if self._held else data
        self._held = b""
        text = self._utf8.decode(data)
        pending = self._utf8.getstate()[0]  # bytes of a character still to come
        self._utf8.reset()
        if self._discarding:
            found = _HANDOUT_MESSAGE.search(text)
            if found is None:
                return []
            text, self._discarding = text[found.end() :], False
        parts = [part for part in _HANDOUT_MESSAGE.split(text) if part]
        limit = self.max_line_bytes
        events: list[Event] = []
        ends_whole = text.endswith(("\n", "\r", _HANDOUT_LEFT))
        if parts and (pending or len(parts) > 1) and not ends_whole:
            self._held = parts.pop().encode(ENCODING) + pending
            if len(self._held) > limit:
                self._held, self._discarding = b"", True
                events.append(LineTooLong(limit))
        elif pending:
            self._held = pending
        if len(data) > limit:
            return [self._line(part) for part in parts] + events
        return [Line(part) for part in parts] + events  # the usual case: no part is over

    def flush(self) -> list[Event]:
        """The held message as it is: a quiet spell says nothing more of it is coming."""
        held, self._held, self._discarding = self._held, b"", False
        return [Line(decode(held))] if held else []  # (feed holds nothing over the limit)

    def _line(self, part: str) -> Event:
        over = len(part.encode(ENCODING)) > self.max_line_bytes
        return LineTooLong(self.max_line_bytes) if over else Line(part)


Framing = Literal["line", "handout"]
"""How a registered server-side connection frames its messages."""


HANDOUT_RECV_SIZE = 1024
"""The handout server relays each ``recv(1024)`` as it came."""

_HANDOUT_BOUNDARY = re.compile(
    _HANDOUT_STAMP  # a message formatted by the handout client
    + r"|(?<=joined the chat!)|(?<=left the chat\.)|(?<=Connected to server!)"  # notices
    + "|"
    + _LINE_BREAKS
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
