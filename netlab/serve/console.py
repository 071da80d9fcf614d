"""The operator console on standard input: an operator called ``operator``, outside the room,
whose commands come from the one command table (``/help`` lists them).

In a terminal it is a prompt_toolkit input line, as ``netlab chat`` has: log lines and
answers print above it, never into what the operator is typing. Plain text is ``/say``.
From a pipe (``--console`` with standard input redirected) it reads lines as they come.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable

from netlab import protocol as p
from netlab.serve.commands import dispatch
from netlab.serve.room import Room

NICK = "operator"
PROMPT = "operator> "


class Console:
    nick = NICK
    host = ""
    operator = True
    muted = False
    console = True

    def __init__(self, loop: asyncio.AbstractEventLoop, room: Room, stop: Callable[[], None]):
        self.loop, self.room, self._stop = loop, room, stop
        self._reading = False
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if sys.stdin.isatty():
            self._task = self.loop.create_task(self._prompt())
            return
        print(p.CONSOLE_HELLO, flush=True)
        self.loop.add_reader(sys.stdin.fileno(), self._line)
        self._reading = True

    async def close(self) -> None:
        if self._reading:
            self._reading = False
            self.loop.remove_reader(sys.stdin.fileno())
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # -- what the command table asks of an actor --

    def send(self, line: str) -> None:
        print(line, flush=True)

    def leave(self, reason: str) -> None:
        self._stop()

    # -- input --

    async def _prompt(self) -> None:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.patch_stdout import patch_stdout

        session: PromptSession[str] = PromptSession(PROMPT)
        with patch_stdout(raw=True):  # the log writes to sys.stderr at the time: above us
            print(p.CONSOLE_HELLO, flush=True)
            while True:
                try:
                    # handle_sigint=False: prompt_toolkit would replace the server's own
                    # SIGINT handler, and remove it when the prompt ends.
                    typed = await session.prompt_async(handle_sigint=False)
                except EOFError:  # Ctrl-D: the console goes, the server stays
                    return
                except KeyboardInterrupt:  # Ctrl-C in the raw terminal: no SIGINT comes
                    self._stop()
                    return
                for line in typed.splitlines():  # a paste can hold several lines
                    self.run(line)

    def _line(self) -> None:
        line = sys.stdin.readline()
        if not line:  # end of input: the console goes, the server stays
            self._reading = False
            self.loop.remove_reader(sys.stdin.fileno())
            return
        self.run(line)

    def run(self, line: str) -> None:
        """One line typed at the console."""
        text = line.strip()
        if not text:
            return
        dispatch(self, p.parse_command(text) or p.Command("say", text))
