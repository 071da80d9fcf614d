"""One bot: its connection (an ``asyncio.Protocol``, cheaper than streams when there are a
thousand) and the protocol spoken through the sans-IO ``ClientSession``.

The bot turns the session's events into the simulation's facts (registered, received, kicked,
refused, closed) and keeps the lines a script waits on. What a bot *does* (its steps) is in
``netlab.sim.steps``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from netlab import aio, net
from netlab import protocol as p
from netlab.sim.results import BotResult

if TYPE_CHECKING:
    from netlab.sim.engine import Simulation

CONNECT_TIMEOUT_S = 10.0
JOIN_TIMEOUT_S = 10.0
"""From connecting to the welcome: a server that never prompts (the handout's when full: it
stops accepting) counts as refusing."""
LINES_SETTLE_S = 0.1
"""A line relay has no welcome: a bot counts as registered this long after it connects, the
time a relay needs to accept it (messages sent before are not expected, but tolerated)."""
HANDOUT_HOLD_S = 0.05
"""A full 1024-byte handout receive may continue in the next one: its last piece is taken as
whole after this long without more."""
LINES_KEPT = 1024
"""Lines behind an ``expect``'s cursor are let go once there are this many."""

Phase = Literal["offline", "joining", "online", "leaving", "kicked"]


class Unreachable(Exception):
    """The target did not accept the first connection of the run."""


class CannotConnect(Exception):
    """A later connection of the run failed (the first one failing is ``Unreachable``)."""


class BotLink(asyncio.Protocol):
    """The socket side of a bot: hands what arrives to its ``Bot``."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        # Now, not when create_connection returns: the prompt may arrive before that.
        self.bot.link = self
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.bot.on_data(self, data)

    def eof_received(self) -> bool:
        self.bot.on_data(self, b"")  # the session's end of stream: what it held comes out
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.bot.on_closed(self, exc)

    def reset(self) -> None:
        """Close with an RST, as a crashed client would: the server sees a reset, not a FIN."""
        if self.transport is not None and not self.transport.is_closing():
            net.reset(self.transport)


class Lines:
    """The lines a bot received, kept only for a bot whose script waits on them."""

    def __init__(self, keep: bool) -> None:
        self.keep = keep
        self.lines: list[str] = []
        self.cursor = 0  # where the next `expect` starts looking
        self._waiter: tuple[Callable[[str], bool], asyncio.Future[int]] | None = None

    def add(self, line: str) -> None:
        if not self.keep:
            return
        self.lines.append(line)
        waiter = self._waiter
        if waiter is not None:
            if not waiter[1].done() and waiter[0](line):
                waiter[1].set_result(len(self.lines) - 1)
        elif self.cursor > LINES_KEPT:
            # What is behind the cursor is never looked at again; while nothing waits no
            # index is held, so this is the moment to let it go.
            del self.lines[: self.cursor]
            self.cursor = 0

    async def wait(self, match: Callable[[str], bool], timeout: float, since: int) -> int | None:
        """The index of the first line from ``since`` on that matches, waiting up to
        ``timeout`` for it; None when none came."""
        for index in range(since, len(self.lines)):
            if match(self.lines[index]):
                return index
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiter = (match, future)
        try:
            return await aio.within(future, timeout)
        except asyncio.TimeoutError:
            return None
        finally:
            self._waiter = None


class Bot:
    """One bot: its connection, its session, what it has received and its errors."""

    def __init__(self, sim: Simulation, nick: str, keep_lines: bool, group: str | None = None):
        self.sim = sim
        self.nick = nick
        self.rng = random.Random(f"{sim.seed}:{nick}")
        self.result = BotResult(nick, group, sim.ledger.tally(nick))
        self.phase: Phase = "offline"
        self.link: BotLink | None = None
        self.address = (sim.host, sim.port)
        """Its server (one of a cluster's: ``Simulation.address_of``)."""
        self.conn = 0
        self.lines = Lines(keep_lines)
        self.last_line = ""
        self.session = p.ClientSession(nick, sim.protocol)
        self.last_write = 0.0
        self._joined: asyncio.Future[bool] | None = None
        self._closed: asyncio.Future[None] | None = None
        self._refusal = ""

    # -- what arrives --

    def on_data(self, link: BotLink, data: bytes) -> None:
        if link is not self.link:
            return
        now = self.sim.now()
        for event in self.session.receive_data(data):
            ON_EVENT[type(event)](self, event, now)
        if self.session.holding:
            self.sim.loop.call_later(HANDOUT_HOLD_S, self._flush, link)

    def _flush(self, link: BotLink) -> None:
        if link is self.link and self.session.holding:
            now = self.sim.now()
            for event in self.session.flush():
                ON_EVENT[type(event)](self, event, now)

    def line(self, line: str, now: float) -> None:
        """A line from the server, as it came."""
        self.sim.record(now, self.nick, "<", line)
        self.last_line = line
        self.lines.add(line)

    def registered(self, now: float) -> None:
        self.phase = "online"
        self.conn = self.sim.register(self, now)
        if self._joined is not None and not self._joined.done():
            self._joined.set_result(True)

    def on_closed(self, link: BotLink, exc: Exception | None) -> None:
        if link is not self.link:
            return
        self.link = None
        now = self.sim.now()
        self.sim.record(now, self.nick, "*", f"connection closed{f' ({exc})' if exc else ''}")
        if self.phase == "joining":
            if self._joined is not None and not self._joined.done():
                self._joined.set_result(False)
        elif self.phase == "online":
            last = f" (last line: {self.last_line!r})" if self.last_line else ""
            self.result.ended = "disconnected"
            self.sim.marks.add(now, self.nick, "disconnect", self.last_line)
            self.error(f"disconnected by the server at {self.sim.elapsed():.1f}s{last}")
            self.sim.depart(self, now)
        self.phase = "offline"
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    # -- what goes out --

    def error(self, text: str) -> None:
        now = self.sim.now()
        self.result.errors.append(text)
        self.sim.marks.add(now, self.nick, "error", text)
        self.sim.record(now, self.nick, "!", text)

    def write(self, data: bytes, shown: str) -> None:
        link = self.link
        if link is None or link.transport is None or link.transport.is_closing():
            raise ConnectionError("not connected")
        link.transport.write(data)
        self.last_write = self.sim.now()
        command = p.parse_command(shown)
        if command is not None and command.name == "login":
            shown = "/login ********"  # a transcript is a file others read: no password in it
        self.sim.record(self.last_write, self.nick, ">", shown)

    async def connect(self) -> bool:
        """Connect and wait for the welcome; False when the server turned the bot away
        (``refusal`` says how)."""
        sim = self.sim
        self.phase = "joining"
        self.session = p.ClientSession(self.nick, sim.protocol)
        self._refusal = ""
        self._joined = sim.loop.create_future()
        self._closed = sim.loop.create_future()
        try:
            _, link = await aio.within(
                sim.loop.create_connection(lambda: BotLink(self), *self.address),
                CONNECT_TIMEOUT_S,
            )
        except (OSError, asyncio.TimeoutError) as error:
            self.phase = "offline"
            reason = str(error) or "timed out"
            if not sim.reached:
                raise Unreachable(f"cannot reach {sim.target}: {reason}") from None
            raise CannotConnect(reason) from None
        sim.reached = True
        if self.session.dialect is p.Dialect.lines:  # a line relay: no handshake, no welcome
            await asyncio.sleep(LINES_SETTLE_S)
            if self.link is link:
                self.registered(sim.now())
        try:
            joined = await aio.within(asyncio.shield(self._joined), JOIN_TIMEOUT_S)
        except asyncio.TimeoutError:
            joined = False
            self._refusal = self._refusal or f"no welcome within {JOIN_TIMEOUT_S:g}s"
        if not joined:
            self.phase = "offline"
            self.close_now()  # see docs: the handout's server spins on a polite close
        return joined

    @property
    def refusal(self) -> str:
        return self._refusal.strip() or "connection closed before the welcome"

    async def wait_closed(self, timeout: float) -> None:
        if self._closed is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await aio.within(asyncio.shield(self._closed), timeout)

    def close_now(self) -> None:
        if self.link is not None:
            self.link.reset()
            self.link = None


# -- the session's events, one handler each --


def _prompted(bot: Bot, event: p.Prompted, now: float) -> None:
    bot.write(event.reply, bot.nick)


def _refused(bot: Bot, event: p.Refused, now: float) -> None:
    bot._refusal = event.text  # a full server, a ban: said before the prompt


def _rejected(bot: Bot, event: p.Rejected, now: float) -> None:
    bot.line(event.reason, now)
    bot._refusal = event.reason  # a rejected nickname: the reason, then the close


def _joined(bot: Bot, event: p.Joined, now: float) -> None:
    for line in event.welcome:
        bot.line(line, now)
    bot.registered(now)


def _received(bot: Bot, event: p.Received, now: float) -> None:
    bot.line(event.text, now)
    if bot.phase != "online":
        return
    sim, message = bot.sim, event.message
    if sim.ledger.match == "text":  # a line relay does not say who spoke
        sim.ledger.receive(bot.conn, None, event.text, now)
    elif type(message) is p.Chat:
        sim.ledger.receive(bot.conn, message.nick, message.text, now)


def _kicked(bot: Bot, event: p.Kicked, now: float) -> None:
    bot.line(event.text, now)
    if bot.phase == "online":
        bot.result.kicked_by = event.by
        bot.sim.marks.add(now, bot.nick, "kick", event.text)
        bot.phase = "kicked"
        bot.sim.depart(bot, now)


def _nothing(bot: Bot, event: object, now: float) -> None:
    """A skipped overlong line counts as nothing; the close is ``on_closed``'s."""


ON_EVENT: dict[type, Callable[[Bot, object, float], None]] = {
    p.Prompted: _prompted,  # type: ignore[dict-item]
    p.Refused: _refused,  # type: ignore[dict-item]
    p.Rejected: _rejected,  # type: ignore[dict-item]
    p.Joined: _joined,  # type: ignore[dict-item]
    p.Received: _received,  # type: ignore[dict-item]
    p.Kicked: _kicked,  # type: ignore[dict-item]
    p.Skipped: _nothing,
    p.Closed: _nothing,
}
