"""The server's reading of a nickname, with no I/O (``ServerSession`` drives it; the client's
side of the handshake is ``ClientSession``)."""

from __future__ import annotations

from dataclasses import dataclass

from netlab.protocol.framing import Framing, decode
from netlab.protocol.nicks import normalize_nick


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
