"""The client's side of a chat connection, with no I/O, in the manner of h11.

``ClientSession`` is fed what the socket read (``receive_data``; ``b""`` for the end of the
stream) and returns events; it turns what the user wants to say into the bytes to write
(``answer``, ``message``, ``command``, ``leaving``). The terminal client, the bots, the bench and
``netlab check`` all speak through it, in one of three dialects:

* ``netlab``: the ``NICK`` prompt, a nickname line, then lines both ways;
* ``handout``: as the handout's ``client.py``: a bare nickname, each message stamped and signed
  by the client in one ``send()``; the server's relays come unframed (``HandoutReader``);
* ``lines``: any line relay with no handshake at all (``ncat --chat``).

The phases and what moves between them are the table ``TRANSITIONS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal

from netlab.protocol.framing import HANDOUT_RECV_SIZE, HandoutReader, Line, LineDecoder, decode
from netlab.protocol.framing import encode_line as _line
from netlab.protocol.texts import (
    ENCODING,
    PROMPT,
    ServerMessage,
    handout_leaving,
    handout_message,
    is_welcome,
    parse_kicked,
    parse_server_line,
)


class Dialect(str, Enum):
    """How a client speaks; the one list of protocols every command offers."""

    netlab = "netlab"
    handout = "handout"
    lines = "lines"


ClientPhase = Literal["prompt", "joining", "chat", "refused", "closed"]


# -- events ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prompted:
    """The server asked for a nickname; ``reply`` is the answer to write."""

    reply: bytes


@dataclass(frozen=True, slots=True)
class Refused:
    """The server spoke before asking (a full server, a ban): its words, whole."""

    text: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """The nickname was refused; a netlab server says why in one line, then closes."""

    reason: str


@dataclass(frozen=True, slots=True)
class Joined:
    """The nickname was taken: every line up to and including the welcome."""

    welcome: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Received:
    """One line (handout: one message) of the chat, and what it says."""

    text: str
    message: ServerMessage


@dataclass(frozen=True, slots=True)
class Kicked:
    """An operator removed this client (netlab); the connection closes next."""

    by: str
    reason: str
    text: str


@dataclass(frozen=True, slots=True)
class Skipped:
    """A line longer than the limit was skipped."""

    limit: int


@dataclass(frozen=True, slots=True)
class Closed:
    """The server ended the stream."""


ClientEvent = Prompted | Refused | Rejected | Joined | Received | Kicked | Skipped | Closed

TRANSITIONS: dict[tuple[str, type], str] = {
    ("prompt", Prompted): "joining",
    ("prompt", Refused): "refused",
    ("prompt", Closed): "closed",
    ("refused", Closed): "closed",
    ("joining", Joined): "chat",
    ("joining", Rejected): "refused",
    ("joining", Closed): "closed",
    ("chat", Received): "chat",
    ("chat", Skipped): "chat",
    ("chat", Kicked): "chat",
    ("chat", Closed): "closed",
}
"""(phase, event) -> the next phase; an event not in the table for its phase is a bug."""


class ClientSession:
    """One connection's client side. ``now`` is never read here: the handout's stamp is the
    caller's ``when``."""

    def __init__(self, nick: str, dialect: Dialect | str = "netlab", max_line: int = 1 << 20):
        self.nick = nick
        self.dialect = Dialect(dialect)
        self.phase: ClientPhase = "chat" if self.dialect is Dialect.lines else "prompt"
        self._head = b""
        self._welcome: list[str] = []
        self._lines = LineDecoder(max_line)
        self._handout = HandoutReader() if self.dialect is Dialect.handout else None
        self.holding = False
        """A full 1024-byte handout receive ended the last data: its last piece is held until
        more arrives or ``flush`` (call it after a short quiet spell)."""

    # -- bytes in --

    def receive_data(self, data: bytes) -> list[ClientEvent]:
        events: list[ClientEvent] = []
        eof = not data
        if self.phase == "prompt":
            data = self._prompt(data, eof, events)
        if self.phase in ("joining", "chat") and (data or eof):
            for text in self._split(data):
                self._line(text, events)
        if eof and self.phase != "closed":
            if self.phase == "joining" and self.dialect is Dialect.netlab and self._welcome:
                self._emit(events, Rejected(self._welcome[0]))
            self._emit(events, Closed())
        return events

    def flush(self) -> list[ClientEvent]:
        """The handout piece held after a full receive, as an event."""
        events: list[ClientEvent] = []
        self.holding = False
        if self._handout is not None:
            for text in self._handout.flush():
                self._line(text, events)
        return events

    def _prompt(self, data: bytes, eof: bool, events: list[ClientEvent]) -> bytes:
        """Bytes before the prompt: the prompt itself, or a refusal read up to its newline."""
        self._head += data
        head = self._head[: len(PROMPT)]
        if head == PROMPT:
            rest, self._head = self._head[len(PROMPT) :], b""
            self._emit(events, Prompted(self.answer()))
            return rest
        refusal_done = b"\n" in self._head or eof
        if (PROMPT.startswith(head) or not refusal_done) and not eof:
            return b""
        if self._head:
            self._emit(events, Refused(decode(self._head).strip()))
        self._head = b""
        return b""

    def _split(self, data: bytes) -> list[str]:
        if self._handout is not None:
            texts = self._handout.feed(data) if data else self._handout.flush()
            self.holding = len(data) >= HANDOUT_RECV_SIZE
            return [t.strip() for t in texts if t.strip()]
        found = []
        for event in self._lines.feed(data):
            found.append(event.text if type(event) is Line else event)
        return found  # type: ignore[return-value]

    def _line(self, text, events: list[ClientEvent]) -> None:
        if not isinstance(text, str):  # LineTooLong from the decoder
            if self.phase == "chat":
                self._emit(events, Skipped(text.limit))
            return
        if self.phase == "joining":
            self._welcome.append(text)
            if is_welcome(text):
                self._emit(events, Joined(tuple(self._welcome)))
            elif self.dialect is Dialect.netlab:
                self._emit(events, Rejected(text))
            return
        if self.phase != "chat":
            return
        kicked = parse_kicked(text) if self.dialect is Dialect.netlab else None
        if kicked is not None:
            self._emit(events, Kicked(kicked[0], kicked[1], text))
        else:
            self._emit(events, Received(text, parse_server_line(text)))

    def _emit(self, events: list[ClientEvent], event: ClientEvent) -> None:
        self.phase = TRANSITIONS[(self.phase, type(event))]  # type: ignore[assignment]
        events.append(event)

    # -- bytes out --

    def answer(self) -> bytes:
        """The nickname as this dialect sends it: a line, or bare (the handout's client)."""
        if self.dialect is Dialect.handout:
            return self.nick.encode(ENCODING)
        return _line(self.nick)

    def message(self, text: str, when: float | None = None) -> bytes:
        """One chat message; the handout's client stamps and signs it itself."""
        if self.dialect is Dialect.handout:
            return handout_message(self.nick, text, when).encode(ENCODING)
        return _line(text)

    def command(self, text: str) -> bytes:
        """``/who`` and the like: a command for netlab, ordinary text elsewhere."""
        return _line(text) if self.dialect is Dialect.netlab else self.message(text)

    def leaving(self) -> bytes:
        """How this dialect says goodbye before closing (nothing for a line relay)."""
        if self.dialect is Dialect.handout:
            return handout_leaving(self.nick).encode(ENCODING)
        return _line("/quit") if self.dialect is Dialect.netlab else b""
