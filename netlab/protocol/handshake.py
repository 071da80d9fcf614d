"""The handshakes, with no I/O: the server's reading of a nickname, the client's of a prompt."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from netlab.protocol.framing import Framing, decode
from netlab.protocol.nicks import normalize_nick
from netlab.protocol.texts import PROMPT


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
