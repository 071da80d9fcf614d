"""The operator console on standard input: an operator called ``operator``, outside the room,
whose commands come from the one command table."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable

from netlab import protocol as p
from netlab.serve.commands import dispatch
from netlab.serve.room import Room

NICK = "operator"


class Console:
    """Reads lines from standard input; plain text is ``/say``; replies go to standard
    output."""

    nick = NICK
    operator = True
    muted = False
    console = True

    def __init__(self, loop: asyncio.AbstractEventLoop, room: Room, stop: Callable[[], None]):
        self.loop, self.room, self._stop = loop, room, stop
        self._reading = False

    def start(self) -> None:
        print(p.CONSOLE_HELLO, flush=True)
        self.loop.add_reader(sys.stdin.fileno(), self._line)
        self._reading = True

    def close(self) -> None:
        if self._reading:
            self._reading = False
            self.loop.remove_reader(sys.stdin.fileno())

    def send(self, line: str) -> None:
        print(line, flush=True)

    def leave(self, reason: str) -> None:
        self._stop()

    def _line(self) -> None:
        line = sys.stdin.readline()
        if not line:  # end of input: the console goes, the server stays
            self.close()
            return
        self.run(line)

    def run(self, line: str) -> None:
        """One line typed at the console."""
        text = line.strip()
        if not text:
            return
        dispatch(self, p.parse_command(text) or p.Command("say", text))
