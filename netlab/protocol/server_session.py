"""The server's side of a chat connection, with no I/O, in the manner of h11.

``ServerSession`` is fed what the socket read (``receive_data(data, now)``; ``b""`` for the end
of the stream) and returns events; it turns what the server says into bytes (``prompt``,
``reply``, ``refuse``). Time is passed in: the I/O layer asks ``deadline()`` and calls
``tick(now)`` when it has passed.

The handshake (docs/protocol.md): after the ``NICK`` prompt, a nickname ending in a newline is a
line client's; bytes with no newline are a handout client's bare nickname once no more arrive
for ``handout_grace`` seconds. Whatever happens, the handshake ends ``handshake_timeout``
seconds after the prompt (a total deadline: a byte now and then does not hold it open). Both
framings then give the same events, so the server never asks which one it serves.

The phases and what moves between them are the table ``TRANSITIONS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from netlab.protocol.framing import (
    ChunkDecoder,
    Event,
    Framing,
    LineDecoder,
    LineTooLong,
    encode_line,
)
from netlab.protocol.handshake import Handshake, Nickname
from netlab.protocol.nicks import clean_text
from netlab.protocol.texts import PROMPT

MERGED_QUIET = 0.05
"""Seconds of quiet that end a handout client's message held for more (``ChunkDecoder``): the
rest of a send cut by a read comes at once, in the same burst."""

ServerPhase = Literal["prompt", "handshake", "chat", "closed"]


# -- events ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NickOffered:
    """The client's answer to the prompt: the server accepts it or ``refuse``s."""

    nick: str
    framing: Framing


@dataclass(frozen=True, slots=True)
class HandshakeTimedOut:
    """No nickname came before the deadline; ``refuse`` with ``HANDSHAKE_TIMEOUT`` follows."""


@dataclass(frozen=True, slots=True)
class Message:
    """One message of the chat, cleaned of terminal controls and surrounding blanks; never
    empty (empty lines are ignored)."""

    text: str


@dataclass(frozen=True, slots=True)
class TooLong:
    """A message over ``max_line_bytes`` was discarded."""

    limit: int


@dataclass(frozen=True, slots=True)
class PeerClosed:
    """The client ended its stream."""


@dataclass(frozen=True, slots=True)
class TelnetAnswer:
    """Bytes to write back to a telnet client (``WILL TIMING-MARK``, so that it resumes)."""

    data: bytes


ServerEvent = NickOffered | HandshakeTimedOut | Message | TooLong | PeerClosed | TelnetAnswer


# what the server does, as steps of the same table
@dataclass(frozen=True, slots=True)
class _Prompt:
    pass


@dataclass(frozen=True, slots=True)
class _Refuse:
    pass


@dataclass(frozen=True, slots=True)
class _Close:
    pass


TRANSITIONS: dict[tuple[str, type], str] = {
    ("prompt", _Prompt): "handshake",
    ("prompt", _Refuse): "closed",
    ("prompt", PeerClosed): "closed",
    ("handshake", NickOffered): "chat",
    ("handshake", HandshakeTimedOut): "handshake",
    ("handshake", TelnetAnswer): "handshake",
    ("chat", TelnetAnswer): "chat",
    ("handshake", _Refuse): "closed",
    ("handshake", PeerClosed): "closed",
    ("chat", Message): "chat",
    ("chat", TooLong): "chat",
    ("chat", _Refuse): "closed",
    ("chat", PeerClosed): "closed",
}
"""(phase, event or step) -> the next phase. ``_Close`` is allowed from every phase."""


class ServerSession:
    """One connection's server side."""

    def __init__(
        self,
        now: float,
        handshake_timeout: float = 10.0,
        handout_grace: float = 0.3,
        max_line_bytes: int = 4096,
    ) -> None:
        self.phase: ServerPhase = "prompt"
        self.framing: Framing | None = None
        self.handout_grace = handout_grace
        self.max_line_bytes = max_line_bytes
        self._total_deadline = now + handshake_timeout
        self._grace_deadline: float | None = None
        self._held_deadline: float | None = None  # a handout message held (ChunkDecoder)
        self._handshake = Handshake()
        self._decoder: LineDecoder | ChunkDecoder | None = None
        self._telnet = Telnet()

    # -- time --

    def deadline(self) -> float | None:
        """When ``tick`` must next be called, or None while nothing waits on the clock."""
        if self.phase == "chat":
            return self._held_deadline
        if self.phase not in ("prompt", "handshake"):
            return None
        if self._grace_deadline is not None:
            return min(self._grace_deadline, self._total_deadline)
        return self._total_deadline

    def tick(self, now: float) -> list[ServerEvent]:
        """Events due by ``now``: a bare nickname settled, the handshake out of time, or a
        handout client's held message ended by a quiet spell."""
        events: list[ServerEvent] = []
        if self.phase == "chat":
            if self._held_deadline is not None and now >= self._held_deadline:
                self._flush_held(events)
            return events
        if self.phase != "handshake":
            return events
        grace_over = self._grace_deadline is not None and now >= self._grace_deadline
        if grace_over or now >= self._total_deadline:
            if self._handshake.pending:
                self._registered(self._handshake.settle(), events)
            else:
                self._emit(events, HandshakeTimedOut())
        return events

    # -- bytes in --

    def receive_data(self, data: bytes, now: float) -> list[ServerEvent]:
        events: list[ServerEvent] = []
        if self.phase == "closed":
            return events
        if not data:
            self._flush_held(events)  # its last message, before its leaving
            self._emit(events, PeerClosed())
            return events
        pieces, answer = self._telnet.feed(data)
        for piece in pieces:
            if piece is INTERRUPT:
                self._interrupted()
            elif self.phase == "handshake":
                self._nickname(piece, now, events)
            elif self.phase == "chat":
                self._messages(piece, events)
                self._hold_until(now)
        if answer and self.phase in ("handshake", "chat"):
            self._emit(events, TelnetAnswer(answer))
        return events

    def _nickname(self, data: bytes, now: float, events: list[ServerEvent]) -> None:
        answer = self._handshake.feed(data)
        if answer is None:
            # Bare bytes: a handout client's whole nickname, or a line client's first
            # half. Wait a quiet spell for more (never past the total deadline).
            self._grace_deadline = now + self.handout_grace
            return
        self._registered(answer, events)

    def _interrupted(self) -> None:
        """telnet's Ctrl-C (``IAC IP``): the line being typed is dropped, nothing worse."""
        if self.phase == "handshake":
            self._handshake = Handshake()
            self._grace_deadline = None
        elif self.framing == "line":
            self._decoder = LineDecoder(self.max_line_bytes)

    def _registered(self, answer: Nickname, events: list[ServerEvent]) -> None:
        self._grace_deadline = None
        self.framing = answer.framing
        decoder = LineDecoder if answer.framing == "line" else ChunkDecoder
        self._decoder = decoder(self.max_line_bytes)
        self._emit(events, NickOffered(answer.nick, answer.framing))
        if answer.rest:
            self._messages(answer.rest, events)

    def _hold_until(self, now: float) -> None:
        holding = isinstance(self._decoder, ChunkDecoder) and self._decoder.holding
        self._held_deadline = now + MERGED_QUIET if holding else None

    def _flush_held(self, events: list[ServerEvent]) -> None:
        self._held_deadline = None
        if isinstance(self._decoder, ChunkDecoder) and self.phase == "chat":
            self._message_events(self._decoder.flush(), events)

    def _messages(self, data: bytes, events: list[ServerEvent]) -> None:
        assert self._decoder is not None
        self._message_events(self._decoder.feed(data), events)

    def _message_events(self, items: list[Event], events: list[ServerEvent]) -> None:
        for item in items:
            if isinstance(item, LineTooLong):
                self._emit(events, TooLong(item.limit))
            elif text := clean_text(item.text).strip():
                self._emit(events, Message(text))

    def _emit(self, events: list[ServerEvent], event: ServerEvent) -> None:
        self._step(event)
        events.append(event)

    def _step(self, step: object) -> None:
        if isinstance(step, _Close):
            self.phase = "closed"
            return
        self.phase = TRANSITIONS[(self.phase, type(step))]  # type: ignore[assignment]

    # -- bytes out --

    def prompt(self) -> bytes:
        """The first bytes of the connection: ``NICK``, with no newline."""
        self._step(_Prompt())
        return PROMPT

    def reply(self, line: str) -> bytes:
        """One line to this client."""
        return encode_line(line)

    def refuse(self, line: str) -> bytes:
        """The last line before the server closes: why it will not serve this client."""
        self._step(_Refuse())
        return encode_line(line)

    def close(self) -> None:
        """The server closes this connection (for whatever reason): nothing more is read."""
        self._step(_Close())


# -- telnet ------------------------------------------------------------------------------

IAC, DONT, DO, WONT, WILL, SB, SE, IP = 255, 254, 253, 252, 251, 250, 240, 244
TIMING_MARK = 6
_COMMANDS = (241, 249)
"""The two-byte commands, ``IAC NOP`` to ``IAC GA`` (``IAC IP`` among them)."""
INTERRUPT = object()
"""In ``Telnet.feed``'s pieces: the client pressed Ctrl-C (``IAC IP``)."""


def _option(byte: int) -> bool:
    """An option telnet negotiates by itself (TIMING-MARK 6, TERMINAL-TYPE 24, NAWS 31, ...).

    Higher options (TSPEED 32, LINEMODE 34, ...) are left as data: after a 255 they are more
    likely broken text (``\\xff\\xfe `` is a UTF-16 byte order mark and a space), and a
    byte below 32 is a control character the server would strip from text anyway (but tab,
    newline and carriage return)."""
    return byte < 32 and byte not in (9, 10, 13)


class Telnet:
    """Telnet's commands (RFC 854) taken out of the byte stream.

    A telnet client sends them in band: Ctrl-C is ``IAC IP IAC DO TIMING-MARK``, and the
    client shows nothing more until ``TIMING-MARK`` is answered. Byte 255 (``IAC``) never
    occurs in UTF-8: a stream without it passes untouched, and a 255 that does not begin a
    command telnet sends by itself stays, to be shown as the broken UTF-8 it is (``_option``).
    A command cut between two receives is held until it is whole.
    """

    def __init__(self) -> None:
        self._held = b""
        self._subnegotiation = False

    def feed(self, data: bytes) -> tuple[list, bytes]:
        """The data in pieces (``bytes``, or ``INTERRUPT`` where an ``IAC IP`` stood), and
        the bytes to answer with."""
        buf, self._held = self._held + data, b""
        if not self._subnegotiation and IAC not in buf:
            return [buf], b""
        pieces: list = []
        text = bytearray()
        answer = bytearray()
        i, n = 0, len(buf)
        while i < n:
            if self._subnegotiation:
                end = buf.find(bytes((IAC, SE)), i)
                if end < 0:
                    self._held = buf[-1:] if buf[-1] == IAC else b""
                    break
                self._subnegotiation, i = False, end + 2
                continue
            if buf[i] != IAC:
                end = buf.find(IAC, i)
                end = n if end < 0 else end
                text += buf[i:end]
                i = end
                continue
            if i + 1 >= n:
                self._held = buf[i:]
                break
            command = buf[i + 1]
            negotiation = command in (WILL, WONT, DO, DONT, SB)
            if negotiation and i + 2 >= n:
                self._held = buf[i:]
                break
            short = _COMMANDS[0] <= command <= _COMMANDS[1]
            if not (short or (negotiation and _option(buf[i + 2]))):
                # Not a command: a 255 byte of broken UTF-8 (shown as U+FFFD, as any), or
                # IAC IAC, telnet's escaped 255.
                text.append(IAC)
                i += 2 if command == IAC else 1
                continue
            if command == DO and buf[i + 2] == TIMING_MARK:
                answer += bytes((IAC, WILL, TIMING_MARK))
            if command == SB:
                self._subnegotiation = True
            elif command == IP:
                pieces += [bytes(text), INTERRUPT]
                text.clear()
            i += 3 if negotiation and command != SB else 2
        if text:
            pieces.append(bytes(text))
        return [piece for piece in pieces if piece], bytes(answer)
