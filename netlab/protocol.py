"""The netlab chat protocol, with no I/O.

Everything here takes bytes or text and returns events or text, in the manner of h11: the
server, the terminal client and the bots feed it what their sockets read and act on what comes
back. The wire format is written down in docs/protocol.md; the texts below are that contract.

Two framings share one port (see the handshake in docs/protocol.md):

* a *line client* answers the ``NICK`` prompt with a newline-terminated nickname; every later
  message is a ``\\n`` or ``\\r\\n`` terminated line (``LineDecoder``);
* a *handout client* (the lab handout's ``client.py``) answers with a bare nickname and sends
  one message per ``send()``, with no terminator (``ChunkDecoder``).
"""

from __future__ import annotations

import codecs
import functools
import math
import re
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

ENCODING = "utf-8"
PROMPT = b"NICK"
"""The handshake prompt: exactly these 4 bytes, no newline (the handout's client compares the
whole receive to it)."""

MAX_NICK_LENGTH = 32
RESERVED_NICKS = frozenset({"admin", "server", "system"})

# -- texts of the protocol (a contract: docs/protocol.md, tests and other peers rely on them) --

CONNECTED = "Connected to server!"
RESERVED_REASON = "Reserved nickname. Choose a different one."
SHUTTING_DOWN = "Server is shutting down."
BANNED = "You are banned from this server."
MUTED = "You are muted: your message was not sent."
HANDSHAKE_TIMEOUT = "No nickname received in time. Bye."
STAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
COALESCE_SHOWN = 3
"""How many names a coalesced join or leave notice spells out before `and N more`."""


def joined(nick: str) -> str:
    return f"{nick} joined the chat!"


def left(nick: str) -> str:
    return f"{nick} left the chat."


def handout_leaving(nick: str) -> str:
    """What the handout's client sends on ``/exit``: from a handout client this is its leaving."""
    return f"{nick} has left the chat."


def _names(nicks: Sequence[str], shown: int = COALESCE_SHOWN) -> str:
    """``a, b and c``; past ``shown`` names, ``a, b, c and 9 more`` (never ``and 1 more``)."""
    if len(nicks) > shown + 1:
        return ", ".join(nicks[:shown]) + f" and {len(nicks) - shown} more"
    if len(nicks) == 1:
        return nicks[0]
    return ", ".join(nicks[:-1]) + " and " + nicks[-1]


def joined_many(nicks: Sequence[str]) -> str:
    """One notice for a burst of arrivals: ``12 users joined: a, b, c and 9 more``."""
    if len(nicks) == 1:
        return joined(nicks[0])
    return f"{len(nicks)} users joined: {_names(nicks)}"


def left_many(nicks: Sequence[str]) -> str:
    """One notice for a burst of departures: ``12 users left: a, b, c and 9 more``."""
    if len(nicks) == 1:
        return left(nicks[0])
    return f"{len(nicks)} users left: {_names(nicks)}"


def server_full(current: int, maximum: int) -> str:
    return f"Server is full ({current}/{maximum} clients). Try again later."


def nick_taken(nick: str) -> str:
    return f"Nickname '{nick}' is already taken. Choose a different one."


def kicked_notice(nick: str, by: str, reason: str = "") -> str:
    """Told to the others when an operator removes ``nick``."""
    return f"{nick} was kicked by {by}" + (f": {reason}" if reason else ".")


def you_were_kicked(by: str, reason: str = "") -> str:
    """Told to the user an operator removes, before the connection closes."""
    return f"You were kicked by {by}" + (f": {reason}" if reason else ".")


def renamed(old: str, new: str) -> str:
    return f"{old} is now known as {new}."


@functools.lru_cache(maxsize=4)
def _stamp_of(second: int) -> str:
    return time.strftime(STAMP_FORMAT, time.localtime(second))


def stamp(when: float | None = None) -> str:
    """The server's timestamp, local time: ``2026-11-25 22:43:02``."""
    # strftime was a tenth of the server's time under fan-out load (py-spy); the text only
    # changes once a second, so recent seconds are cached.
    return _stamp_of(math.floor(time.time() if when is None else when))


def chat_line(nick: str, text: str, when: float | None = None) -> str:
    """A chat message as the others receive it: ``[YYYY-MM-DD HH:MM:SS] NICK: TEXT``."""
    return f"[{stamp(when)}] {nick}: {text}"


def action_line(nick: str, text: str, when: float | None = None) -> str:
    """``/me waves`` as the others receive it: ``[...] * NICK waves``."""
    return f"[{stamp(when)}] * {nick} {text}"


def private_line(nick: str, text: str, when: float | None = None, to: str | None = None) -> str:
    """A ``/msg``: ``[...] [private] FROM: TEXT`` to the receiver, and
    ``[...] [private to TO] FROM: TEXT`` back to the sender as confirmation."""
    tag = f"[private to {to}]" if to else "[private]"
    return f"[{stamp(when)}] {tag} {nick}: {text}"


def handout_message(nick: str, text: str, when: float | None = None) -> str:
    """A message formatted as the handout's client formats it before sending."""
    return chat_line(nick, text, when)


# -- nicknames -----------------------------------------------------------------------------

_NICK_CHARS = re.compile(r"[\w-]+")


def normalize_nick(raw: str) -> str:
    """Surrounding white space goes; composed and decomposed letters compare equal (NFC)."""
    return unicodedata.normalize("NFC", raw.strip())


def nick_key(nick: str) -> str:
    """Nicknames are unique without regard to case: this is the key to compare them by."""
    return nick.casefold()


def nick_problem(nick: str) -> str | None:
    """Why ``nick`` cannot be used, or None when it can. Uniqueness is the server's business."""
    if not nick:
        return "Empty nickname. Use 1-32 letters, digits, _ or -."
    if len(nick) > MAX_NICK_LENGTH:
        return f"Nickname too long ({len(nick)} characters, at most {MAX_NICK_LENGTH})."
    if not _NICK_CHARS.fullmatch(nick):
        return "Invalid nickname: use only letters, digits, _ and -."
    if nick_key(nick) in RESERVED_NICKS:
        return RESERVED_REASON
    return None


# -- cleaning text for other people's screens ------------------------------------------------

_ANSI = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor movement
    r"|\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: window titles, hyperlinks
    r"|[PX^_][^\x1b]*(?:\x1b\\)?"  # DCS, SOS, PM, APC strings
    r"|[ -/]*[0-~])?"  # two-character escapes (and a lone ESC)
)
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def clean_text(text: str) -> str:
    """Strip what would act on a terminal instead of being shown: escape sequences, NUL and
    other control characters, bidirectional overrides. Tabs become spaces."""
    if text.isprintable():
        return text
    return _CONTROL.sub("", _ANSI.sub("", text).replace("\t", " "))


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


class ChunkDecoder:
    """The handout's framing: each receive is one message, sent with no terminator.

    Text that a client does put on separate lines is taken as separate messages. A UTF-8
    sequence cut between two receives is joined again rather than garbled.
    """

    def __init__(self, max_line_bytes: int = 4096) -> None:
        self.max_line_bytes = max_line_bytes
        self._utf8 = codecs.getincrementaldecoder(ENCODING)(errors="replace")

    def feed(self, data: bytes) -> list[Event]:
        if len(data) > self.max_line_bytes:
            self._utf8.reset()
            return [LineTooLong(self.max_line_bytes)]
        text = self._utf8.decode(data)
        return [Line(part) for part in _LINE_BREAK.split(text) if part]


Framing = Literal["line", "handout"]


@dataclass(frozen=True, slots=True)
class Nickname:
    """The client's answer to the prompt, and how it frames what follows."""

    nick: str
    framing: Framing
    rest: bytes = b""
    """Bytes that came after the nickname's newline: the first of the client's messages."""


class Handshake:
    """The server's side of the handshake, after it has sent ``PROMPT``.

    ``feed`` returns a ``Nickname`` once a newline arrives (a line client). Bytes without a
    newline may be a handout client's bare nickname or the first part of a line client's: the
    server waits a short quiet period for more, then calls ``settle`` to take them as a bare
    nickname. A nickname split into two segments is thus read whole either way.
    """

    def __init__(self, max_bytes: int = 256) -> None:
        self.max_bytes = max_bytes
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Nickname | None:
        self._buffer += data
        end = self._buffer.find(b"\n")
        if end >= 0:
            nick = normalize_nick(decode(self._buffer[:end]))
            return Nickname(nick, "line", bytes(self._buffer[end + 1 :]))
        if len(self._buffer) > self.max_bytes:
            return Nickname(normalize_nick(decode(self._buffer)), "handout")
        return None

    @property
    def pending(self) -> bool:
        """Bytes have arrived but no newline yet."""
        return bool(self._buffer)

    def settle(self) -> Nickname:
        return Nickname(normalize_nick(decode(self._buffer)), "handout")


# -- commands ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Command:
    """A line starting with ``/``: ``/kick bob spamming`` is ``Command("kick", "bob spamming")``."""

    name: str
    args: str = ""

    def split(self) -> tuple[str, str]:
        """The first word of the arguments and the rest: ``("bob", "spamming")``."""
        first, _, rest = self.args.partition(" ")
        return first, rest.strip()


def parse_command(text: str) -> Command | None:
    """The command in ``text``, or None when it is chat. A command is never broadcast."""
    if not text.startswith("/"):
        return None
    name, _, args = text[1:].strip().partition(" ")
    return Command(name.lower(), args.strip())


# -- what a client reads from the server -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Chat:
    """``[stamp] nick: text``"""

    stamp: str
    nick: str
    text: str


@dataclass(frozen=True, slots=True)
class Action:
    """``[stamp] * nick text`` (``/me``)"""

    stamp: str
    nick: str
    text: str


@dataclass(frozen=True, slots=True)
class Private:
    """``[stamp] [private] nick: text``, or with ``to`` set, the sender's own copy."""

    stamp: str
    nick: str
    text: str
    to: str | None = None


@dataclass(frozen=True, slots=True)
class Notice:
    """Any other line: joins, leaves, kicks, replies to commands, errors."""

    text: str


ServerMessage = Chat | Action | Private | Notice

_STAMP = r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\] "
_CHAT = re.compile(_STAMP + r"([^\s:\[\]*][^\s:]*): (.*)", re.DOTALL)
_ACTION = re.compile(_STAMP + r"\* (\S+) (.*)", re.DOTALL)
_PRIVATE = re.compile(_STAMP + r"\[private(?: to (\S+))?\] (\S+): (.*)", re.DOTALL)


def parse_server_line(line: str) -> ServerMessage:
    """What a line from a netlab server (or a handout client's relayed message) says."""
    if line.startswith("["):
        if m := _CHAT.fullmatch(line):
            return Chat(*m.groups())
        if m := _PRIVATE.fullmatch(line):
            when, to, nick, text = m.groups()
            return Private(when, nick, text, to)
        if m := _ACTION.fullmatch(line):
            return Action(*m.groups())
    return Notice(line)


class ClientHandshake:
    """The client's side: is the server's first word the ``NICK`` prompt or a refusal?

    ``feed`` returns ``"prompt"`` once the 4-byte prompt has arrived (any bytes after it are
    kept in ``rest``), ``"refused"`` when the server spoke something else first (a full server,
    a ban: the text is in ``rest``), and None while it cannot tell yet.
    """

    def __init__(self) -> None:
        self.rest = b""
        self._buffer = b""

    def feed(self, data: bytes) -> Literal["prompt", "refused"] | None:
        self._buffer += data
        head = self._buffer[: len(PROMPT)]
        if head == PROMPT:
            self.rest = self._buffer[len(PROMPT) :]
            return "prompt"
        if PROMPT.startswith(head):
            return None
        self.rest = self._buffer
        return "refused"


HANDOUT_RECV_SIZE = 1024
"""The handout server relays each ``recv(1024)`` as it came."""

_HANDOUT_BOUNDARY = re.compile(
    r"(?=\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] )"  # a message formatted by the handout client
    r"|(?<=joined the chat!)|(?<=left the chat\.)|(?<=Connected to server!)"  # notices
    r"|\r?\n"
)


class HandoutReader:
    """Splits what the handout's server sends into messages.

    That server has no framing: two messages may arrive in one receive, and a message longer
    than its 1024-byte receive arrives in parts. Messages are cut where one formatted by the
    handout's client begins, after its notices and at newlines. A receive of exactly 1024 bytes
    may be continued by the next one, so its last piece is held until more arrives or
    ``flush`` is called.
    """

    def __init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder(ENCODING)(errors="replace")
        self._held = ""

    def feed(self, data: bytes) -> list[str]:
        text = self._held + self._utf8.decode(data)
        self._held = ""
        parts = [p for p in _HANDOUT_BOUNDARY.split(text) if p]
        if len(data) >= HANDOUT_RECV_SIZE and parts:
            self._held = parts.pop()
        return parts

    def flush(self) -> list[str]:
        held, self._held = self._held, ""
        return [held] if held else []
