"""The bot engine of ``netlab simulate``: many scripted chat clients in one asyncio process.

The pieces:

* ``Ledger``: the accounting, pure (no I/O, no clock): fed who joined, who sent what, who
  received what and who left, it knows every copy expected, delivered and lost, and latencies.
* ``BotLink`` / ``BotRun``: one bot: an ``asyncio.Protocol`` for its socket (cheaper than
  streams when there are a thousand) and the bot's state and steps.
* ``Simulation``: runs a scenario's bots on a clock scaled by ``--speed``, takes the socket
  snapshots, and ends the run; ``RunResult`` is what it leaves for the report.

docs/scenarios.md is the contract for what is counted and when.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import socket
import struct
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, TextIO

from netlab import protocol as p
from netlab.scenario import Bot, Group, Scenario, Step

IN_FLIGHT_S = 2.0
"""A copy whose receiver leaves (or the run ends) within this long of its sending was still in
flight: it is not expected at all (CLARIFICATIONS: "when a copy counts as lost")."""
CONNECT_TIMEOUT_S = 10.0
JOIN_TIMEOUT_S = 10.0
"""From connecting to ``Connected to server!``: a server that never prompts (the handout's when
full: it stops accepting) counts as refusing."""
REPLY_TIMEOUT_S = 5.0
"""How long ``login`` and ``kick`` wait for the server's answer."""
CLOSE_TIMEOUT_S = 3.0
RECONNECT_TRIES = 5
"""Joins a ``reconnect`` tries while the server still holds the dropped connection's nick."""
HANDOUT_GAP_S = 0.05
"""Least time between two sends of one bot under ``--protocol handout``: that framing has no
terminator, so two sends read by the server in one receive would merge into one message."""
LINES_SETTLE_S = 0.1
"""A line relay has no welcome: a bot counts as registered this long after it connects, the
time a relay needs to accept it (messages sent before are not expected, but tolerated)."""
SETTLE_S = 2.0
"""When every script is done, at most this long for the copies in flight to arrive."""


# ---- accounting ------------------------------------------------------------------------------


class Message:
    """One chat message a bot sent: shared by the pending queues of all its receivers."""

    __slots__ = ("sender", "sent_at", "text")

    def __init__(self, sender: str, text: str, sent_at: float) -> None:
        self.sender, self.text, self.sent_at = sender, text, sent_at


@dataclass
class Tally:
    """One bot's figures, over all of its connections."""

    sent: int = 0
    delivered: int = 0
    lost: int = 0
    foreign: int = 0
    """Chat lines from outside the simulation."""
    unexpected: int = 0
    """Copies that came though not expected (sent while the bot was still joining)."""
    latencies_ms: array = field(default_factory=lambda: array("d"))

    @property
    def expected(self) -> int:
        return self.delivered + self.lost

    @classmethod
    def merged(cls, tallies: Iterable[Tally]) -> Tally:
        """The figures of several bots together (a group, or everyone)."""
        total = cls()
        for tally in tallies:
            total.sent += tally.sent
            total.delivered += tally.delivered
            total.lost += tally.lost
            total.foreign += tally.foreign
            total.unexpected += tally.unexpected
            total.latencies_ms.extend(tally.latencies_ms)
        return total


class _Window:
    """One connection of a bot between its registration and its leaving: its pending copies."""

    __slots__ = ("bot", "missed", "pending")

    def __init__(self, bot: str) -> None:
        self.bot = bot
        self.pending: dict[str, deque[Message]] = {}  # by sender, or by text when matching text
        self.missed: list[float] = []  # send times of copies passed over: they cannot come now


def clean(text: str) -> str:
    """What a chat text looks like after the server has cleaned it: compared on both sides."""
    return p.clean_text(text).strip()


class Ledger:
    """Exact delivery accounting, fed events in time order.

    ``match="sender"`` (netlab, handout): a copy is matched to the oldest pending message of its
    sender with the same text; older ones passed over are missed (a server relays one sender's
    messages in order, so they cannot arrive any more). ``match="text"`` (lines): the server
    does not say who spoke, so a copy is matched to the oldest pending message with its text.
    """

    def __init__(self, match: Literal["sender", "text"] = "sender", in_flight: float = IN_FLIGHT_S):
        self.match = match
        self.in_flight = in_flight
        self.tallies: dict[str, Tally] = {}
        self.windows: dict[int, _Window] = {}
        self.pending = 0
        self.delivered = 0
        self.sent = 0
        self._texts: set[str] = set()

    def tally(self, bot: str) -> Tally:
        found = self.tallies.get(bot)
        if found is None:
            found = self.tallies[bot] = Tally()
        return found

    def register(self, conn: int, bot: str) -> None:
        """Connection ``conn`` of ``bot`` had its ``Connected to server!``: from now on it
        expects every message sent."""
        self.tally(bot)
        self.windows[conn] = _Window(bot)

    def send(self, bot: str, text: str, now: float) -> Message | None:
        """``bot`` sent chat ``text``; None when the server would not relay it (empty)."""
        text = clean(text)
        if not text:
            return None
        message = Message(bot, text, now)
        self.tally(bot).sent += 1
        self.sent += 1
        key = bot if self.match == "sender" else text
        if self.match == "text":
            self._texts.add(text)
        for window in self.windows.values():
            if window.bot != bot:
                queue = window.pending.get(key)
                if queue is None:
                    queue = window.pending[key] = deque()
                queue.append(message)
                self.pending += 1
        return message

    def receive(self, conn: int, sender: str | None, text: str, now: float) -> str:
        """Connection ``conn`` received chat ``text`` from ``sender`` (None: unknown).
        Returns ``delivered``, ``unexpected``, ``foreign`` or ``ignored`` (not registered)."""
        window = self.windows.get(conn)
        if window is None:
            return "ignored"
        tally = self.tallies[window.bot]
        if self.match == "sender":
            if sender not in self.tallies:
                tally.foreign += 1
                return "foreign"
            message = self._take(window, sender, clean(text))
        else:
            message = None
            candidates = _relayed_texts(clean(text))
            for candidate in candidates:
                if candidate in window.pending:
                    message = self._take(window, candidate, candidate)
                    break
            if message is None and not any(t in self._texts for t in candidates):
                tally.foreign += 1
                return "foreign"
        if message is None:
            tally.unexpected += 1
            return "unexpected"
        tally.delivered += 1
        self.delivered += 1
        tally.latencies_ms.append((now - message.sent_at) * 1000.0)
        return "delivered"

    def _take(self, window: _Window, key: str, text: str) -> Message | None:
        queue = window.pending.get(key)
        if not queue:
            return None
        if queue[0].text != text:  # rare: an earlier copy went missing
            skipped = next((i for i, m in enumerate(queue) if m.text == text), None)
            if skipped is None:
                return None
            for _ in range(skipped):
                window.missed.append(queue.popleft().sent_at)
            self.pending -= skipped
        message = queue.popleft()
        self.pending -= 1
        if not queue:
            del window.pending[key]
        return message

    def depart(self, conn: int, now: float) -> None:
        """Connection ``conn`` begins to leave, drops or is kicked: what has not come is lost,
        unless it was sent within ``in_flight`` of now."""
        window = self.windows.pop(conn, None)
        if window is None:
            return
        tally = self.tallies[window.bot]
        horizon = now - self.in_flight
        for queue in window.pending.values():
            self.pending -= len(queue)
            tally.lost += sum(1 for message in queue if message.sent_at <= horizon)
        tally.lost += sum(1 for sent_at in window.missed if sent_at <= horizon)

    def finish(self, now: float) -> None:
        """The run ends: every connection still registered departs now."""
        for conn in list(self.windows):
            self.depart(conn, now)

    def totals(self) -> Tally:
        return Tally.merged(self.tallies.values())


def _relayed_texts(line: str) -> list[str]:
    """The texts a line relay's line may carry: as it came, or after a ``<user1> ``-style or
    ``nick: `` prefix (``ncat --chat`` adds the first)."""
    found = [line]
    for separator in ("> ", ": "):
        head, sep, tail = line.partition(separator)
        if sep and tail and " " not in head.strip("<[]"):
            found.append(tail.strip())
    return found


# ---- one bot -------------------------------------------------------------------------------


class BotLink(asyncio.Protocol):
    """The socket side of a bot: hands what arrives to its ``BotRun``."""

    def __init__(self, bot: BotRun) -> None:
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
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.bot.on_closed(self, exc)

    def reset(self) -> None:
        """Close with an RST, as a crashed client would: the server sees a reset, not a FIN."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()


Phase = Literal["offline", "prompt", "nick_sent", "refused", "online", "leaving", "kicked"]


class Unreachable(Exception):
    """The target did not accept the first connection of the run."""


class BotRun:
    """One bot: its connection, what it has received, its errors, and its steps."""

    def __init__(
        self, sim: Simulation, nick: str, keep_lines: bool, group: str | None = None
    ) -> None:
        self.sim = sim
        self.nick = nick
        self.group = group
        self.ended: str | None = None  # how its connection ended, for the summary
        self.rng = random.Random(f"{sim.seed}:{nick}")
        self.errors: list[str] = []
        self.kicked_by: str | None = None
        self.refused: str | None = None
        self.refusals = 0  # refusals the script expected (`outcome: refused`)
        self.phase: Phase = "offline"
        self.link: BotLink | None = None
        self.conn = 0
        self.keep_lines = keep_lines
        self.lines: list[str] = []
        self.cursor = 0  # where the next `expect` starts looking in `lines`
        self.last_line = ""
        self._waiter: tuple[Callable[[str], bool], asyncio.Future[int]] | None = None
        self._joined: asyncio.Future[str] | None = None
        self._closed: asyncio.Future[None] | None = None
        self._handshake = p.ClientHandshake()
        self._reader: Callable[[bytes], list[str]] = _reader(sim.protocol)
        self._last_write = 0.0
        self._refusal = ""

    # -- what arrives --

    def on_data(self, link: BotLink, data: bytes) -> None:
        if link is not self.link:
            return
        if self.phase in ("prompt", "refused"):
            if self.phase == "prompt":
                answer = self._handshake.feed(data)
                if answer is None:
                    return
                data = self._handshake.rest
                if answer == "prompt":
                    self.phase = "nick_sent"
                    nick = self.nick.encode() + (b"\n" if self.sim.protocol == "netlab" else b"")
                    self._write(nick, self.nick)
                else:
                    self.phase = "refused"
            if self.phase == "refused":
                self._refusal += p.decode(data)
                return
        now = self.sim.now()
        for line in self._reader(data):
            self.on_line(line, now)

    def on_line(self, line: str, now: float) -> None:
        sim = self.sim
        if sim.transcript is not None:
            sim.record(now, self.nick, "<", line)
        phase = self.phase
        if phase == "online":
            if sim.protocol == "lines":
                sim.ledger.receive(self.conn, None, line, now)
            else:
                message = p.parse_server_line(line)
                if type(message) is p.Chat:
                    sim.ledger.receive(self.conn, message.nick, message.text, now)
                elif line.startswith("You were kicked by "):
                    self.kicked_by = line[len("You were kicked by ") :].split(":")[0].rstrip(".")
                    self.phase = "kicked"
                    sim.depart(self, now)
        elif phase == "nick_sent":
            if line.startswith(p.CONNECTED):
                self._registered(now)
            elif sim.protocol == "netlab":
                self._refusal = line  # a rejected nickname: the reason, then the close
        self.last_line = line
        if self.keep_lines:
            self.lines.append(line)
            waiter = self._waiter
            if waiter is not None:
                if not waiter[1].done() and waiter[0](line):
                    waiter[1].set_result(len(self.lines) - 1)
            elif self.cursor > 1024:
                # What is behind the cursor is never looked at again; while nothing waits no
                # index is held, so this is the moment to let it go.
                del self.lines[: self.cursor]
                self.cursor = 0

    def _registered(self, now: float) -> None:
        self.phase = "online"
        self.conn = self.sim.register(self, now)
        if self._joined is not None and not self._joined.done():
            self._joined.set_result("connected")

    def on_closed(self, link: BotLink, exc: Exception | None) -> None:
        if link is not self.link:
            return
        self.link = None
        now = self.sim.now()
        if self.sim.transcript is not None:
            self.sim.record(now, self.nick, "*", f"connection closed{f' ({exc})' if exc else ''}")
        if self.phase in ("prompt", "nick_sent", "refused"):
            if self._joined is not None and not self._joined.done():
                self._joined.set_result("refused")
        elif self.phase == "online":
            last = f" (last line: {self.last_line!r})" if self.last_line else ""
            self.ended = "disconnected"
            self.error(f"disconnected by the server at {self.sim.elapsed():.1f}s{last}")
            self.sim.depart(self, now)
        self.phase = "offline"
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    # -- helpers --

    def error(self, text: str) -> None:
        self.errors.append(text)
        if self.sim.transcript is not None:
            self.sim.record(self.sim.now(), self.nick, "!", text)

    def _write(self, data: bytes, shown: str) -> None:
        link = self.link
        if link is None or link.transport is None or link.transport.is_closing():
            raise ConnectionError("not connected")
        link.transport.write(data)
        self._last_write = self.sim.now()
        if self.sim.transcript is not None:
            self.sim.record(self._last_write, self.nick, ">", shown)

    async def _send(self, text: str) -> None:
        """One message, framed as the protocol wants."""
        if self.sim.protocol == "handout":
            await self._handout_gap()
            self._write(p.handout_message(self.nick, text).encode(), text)
        else:
            self._write(p.encode_line(text), text)

    async def _handout_gap(self) -> None:
        """Wait out ``HANDOUT_GAP_S`` since this bot's last send (the handout has no framing)."""
        gap = self._last_write + HANDOUT_GAP_S - self.sim.now()
        if gap > 0:
            await asyncio.sleep(gap)

    async def wait_line(
        self, match: Callable[[str], bool], timeout: float, since: int
    ) -> int | None:
        """The index in ``lines`` of the first line from ``since`` on that matches, waiting up
        to ``timeout`` for it; None when none came."""
        for index in range(since, len(self.lines)):
            if match(self.lines[index]):
                return index
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiter = (match, future)
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            return None
        finally:
            self._waiter = None

    async def _reply(self, match: Callable[[str], bool], since: int) -> str | None:
        found = await self.wait_line(match, REPLY_TIMEOUT_S, since)
        return None if found is None else self.lines[found]

    # -- the steps --

    async def join(self, outcome: str = "connected") -> bool:
        """Connect and register; True when the outcome is the one expected."""
        sim = self.sim
        self.phase = "prompt"
        self._handshake = p.ClientHandshake()
        self._reader = _reader(sim.protocol)
        self._refusal = ""
        self._joined = asyncio.get_running_loop().create_future()
        self._closed = asyncio.get_running_loop().create_future()
        try:
            _, link = await asyncio.wait_for(
                sim.loop.create_connection(lambda: BotLink(self), sim.host, sim.port),
                CONNECT_TIMEOUT_S,
            )
        except (OSError, asyncio.TimeoutError) as error:
            self.phase = "offline"
            reason = str(error) or "timed out"
            if not sim.reached:
                raise Unreachable(f"cannot reach {sim.target}: {reason}") from None
            self.error(f"join: cannot connect: {reason}")
            return False
        sim.reached = True
        if sim.protocol == "lines":
            await asyncio.sleep(LINES_SETTLE_S)
            if self.link is link:
                self._registered(sim.now())
        try:
            result = await asyncio.wait_for(asyncio.shield(self._joined), JOIN_TIMEOUT_S)
        except asyncio.TimeoutError:
            result = "refused"
            self._refusal = self._refusal or f"no welcome within {JOIN_TIMEOUT_S:g}s"
        if result == "refused":
            self.refused = self._refusal.strip() or "connection closed before the welcome"
            self.phase = "offline"
            if self.link is not None:
                self.link.reset()  # see docs: the handout's server spins on a polite close
                self.link = None
            if sim.transcript is not None:
                sim.record(sim.now(), self.nick, "*", f"refused: {self.refused}")
            if outcome != "refused":
                self.error(f"join: refused: {self.refused}")
                return False
            self.refusals += 1
            return True
        self.refused = None
        self.ended = None
        if outcome == "refused":
            self.error("join: expected to be refused, but was connected")
            return False
        return True

    async def say(self, text: str) -> None:
        await self._send(text)
        if self.sim.protocol != "netlab" or not text.startswith("/"):  # netlab runs commands
            self.sim.ledger.send(self.nick, text, self._last_write)

    async def command(self, text: str) -> None:
        if self.sim.protocol == "netlab":
            await self._send(text)
        else:
            await self.say(text)  # those servers have no commands: it is chat to them

    async def login(self, password: str) -> None:
        since = len(self.lines)
        await self._send(f"/login {password}")
        reply = await self._reply(
            lambda line: line.startswith(
                ("You are now an operator", "Wrong password", "This server has no operators")
            ),
            since,
        )
        if reply is None:
            self.error(f"login: no answer within {REPLY_TIMEOUT_S:g}s")
        elif not reply.startswith("You are now an operator"):
            self.error(f"login: {reply}")

    async def kick(self, nick: str, reason: str) -> None:
        since = len(self.lines)
        await self._send(f"/kick {nick} {reason}".rstrip())
        done = f"{nick} was kicked by {self.nick}".casefold()
        reply = await self._reply(
            lambda line: (
                line.casefold().startswith(done)
                or line.startswith(("No such user", "Permission denied", "Usage:"))
            ),
            since,
        )
        if reply is None:
            self.error(f"kick {nick}: no answer within {REPLY_TIMEOUT_S:g}s")
        elif not reply.casefold().startswith(done):
            self.error(f"kick {nick}: {reply}")

    async def expect(self, text: str, within: float) -> None:
        found = await self.wait_line(lambda line: text in line, within, self.cursor)
        if found is None:
            self.error(f"expect {text!r}: not received within {within:g}s")
        else:
            self.cursor = found + 1

    async def leave(self) -> None:
        """Leave as the protocol's client does: ``/exit`` (netlab), the handout client's
        leaving message then a reset (handout), or a plain close (lines)."""
        link = self.link
        if link is None or self.phase != "online":
            return
        self.phase = "leaving"
        self.ended = "left"
        self.sim.depart(self, self.sim.now())
        protocol = self.sim.protocol
        with contextlib.suppress(ConnectionError):
            if protocol == "netlab":
                await self._send("/exit")
            elif protocol == "handout":
                await self._handout_gap()
                leaving = p.handout_leaving(self.nick)  # sent bare, as the handout's client does
                self._write(leaving.encode(), leaving)
            else:
                link.transport.close()  # type: ignore[union-attr]
        # The handout's server never closes: a reset makes it say "left" (a FIN makes it spin).
        wait = CLOSE_TIMEOUT_S if protocol != "handout" else 0.5
        await self._wait_closed(wait)
        link.reset()

    async def drop(self) -> None:
        link = self.link
        if link is None:
            return
        if self.phase == "online":
            self.sim.depart(self, self.sim.now())
        self.phase = "leaving"
        self.ended = "dropped"
        link.reset()
        await self._wait_closed(CLOSE_TIMEOUT_S)

    async def _wait_closed(self, timeout: float) -> None:
        if self._closed is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._closed), timeout)

    async def reconnect(self) -> None:
        await self.drop()
        for _ in range(RECONNECT_TRIES - 1):
            if await self.join() or "already taken" not in (self.refused or ""):
                return
            # The server may not have seen the reset yet: the nick is still taken. Try again.
            self.errors.pop()
            await asyncio.sleep(0.2)
        await self.join()  # the last try: a refusal now is the bot's error

    def close_now(self) -> None:
        if self.link is not None:
            self.link.reset()
            self.link = None


def _reader(protocol: str) -> Callable[[bytes], list[str]]:
    """Bytes -> complete lines (or messages, for the handout's unframed stream)."""
    if protocol == "handout":
        return p.HandoutReader().feed
    decoder = p.LineDecoder(1 << 20)
    return lambda data: [event.text for event in decoder.feed(data) if type(event) is p.Line]


# ---- the run -------------------------------------------------------------------------------


@dataclass
class Snapshot:
    at_s: float
    rows: list[dict[str, Any]]


@dataclass
class RunResult:
    """Everything the report needs."""

    scenario: Scenario
    protocol: str
    target: str
    embedded: bool
    duration_s: float
    bots: list[BotRun]
    ledger: Ledger
    snapshots: list[Snapshot]
    speed: float = 1.0
    seed: int = 0
    cut_by_duration: bool = False
    engine: dict[str, float] = field(default_factory=dict)
    """What this process spent: ``cpu_s`` during the run, ``max_rss_mb`` at its end."""


SnapshotTaker = Callable[[], list[dict[str, Any]]]


class Simulation:
    """Runs one scenario's bots against ``host:port``."""

    def __init__(
        self,
        scenario: Scenario,
        host: str,
        port: int,
        protocol: str,
        speed: float = 1.0,
        seed: int | None = None,
        transcript: TextIO | None = None,
        snapshot: SnapshotTaker | None = None,
    ) -> None:
        self.scenario = scenario
        self.host, self.port = host, port
        self.target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.protocol = protocol
        self.speed = speed
        self.seed = scenario.seed if seed is None else seed
        self.transcript = transcript
        self.take_snapshot = snapshot
        self.ledger = Ledger("text" if protocol == "lines" else "sender")
        self.reached = False
        self.online = 0
        self.snapshots: list[Snapshot] = []
        self.bots: list[BotRun] = []
        self._conns = 0
        self.loop: asyncio.AbstractEventLoop
        self.start = 0.0

    # -- the clock: scenario seconds, scaled by --speed --

    # time.monotonic, not loop.time: uvloop's clock ticks in whole milliseconds, too coarse
    # for loopback latencies.
    def now(self) -> float:
        return time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def due(self, scenario_seconds: float) -> float:
        return self.start + scenario_seconds / self.speed

    async def sleep_until(self, when: float) -> None:
        delay = when - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    # -- bookkeeping shared by the bots --

    def register(self, bot: BotRun, now: float) -> int:
        self._conns += 1
        self.online += 1
        self.ledger.register(self._conns, bot.nick)
        if self.transcript is not None:
            self.record(now, bot.nick, "*", "registered")
        return self._conns

    def depart(self, bot: BotRun, now: float) -> None:
        if bot.conn in self.ledger.windows:
            self.online -= 1
        self.ledger.depart(bot.conn, now)

    def record(self, now: float, nick: str, direction: str, text: str) -> None:
        assert self.transcript is not None
        self.transcript.write(f"{now - self.start:10.3f} {nick} {direction} {text}\n")

    # -- running --

    async def run(self) -> RunResult:
        """Run to the end; raises Unreachable when the target accepts no connection."""
        self.loop = asyncio.get_running_loop()
        cpu_before = _cpu_seconds()
        self.start = time.monotonic()
        work = [asyncio.ensure_future(job) for job in self._jobs()]
        observers = [
            asyncio.ensure_future(self._observe(at)) for at in self.scenario.observe.sockets
        ]
        cut = False
        everything = asyncio.gather(*work, *observers)
        try:
            duration = self.scenario.duration
            limit = None if duration is None else max(0.0, self.due(duration) - self.now())
            try:
                await asyncio.wait_for(asyncio.shield(everything), limit)
            except asyncio.TimeoutError:
                cut = True
            if not cut:
                await self._settle()
        except Unreachable:
            for bot in self.bots:
                bot.close_now()
            raise
        finally:
            for task in (*work, *observers):
                task.cancel()
            await asyncio.gather(*work, *observers, return_exceptions=True)
            if everything.done() and not everything.cancelled():
                # Seen here: once the shield is cancelled (Ctrl-C) nothing else retrieves it,
                # and asyncio would print "exception was never retrieved" with a traceback.
                everything.exception()
        end = self.now()
        self.ledger.finish(end)
        await asyncio.gather(*(self._last_leave(bot) for bot in self.bots))
        return RunResult(
            scenario=self.scenario,
            protocol=self.protocol,
            target=self.target,
            embedded=False,
            duration_s=end - self.start,
            bots=self.bots,
            ledger=self.ledger,
            snapshots=sorted(self.snapshots, key=lambda s: s.at_s),
            speed=self.speed,
            seed=self.seed,
            engine=_engine_cost(cpu_before),
            cut_by_duration=cut,
        )

    async def _settle(self) -> None:
        deadline = self.now() + SETTLE_S
        while self.ledger.pending and self.now() < deadline:
            await asyncio.sleep(0.02)

    async def _last_leave(self, bot: BotRun) -> None:
        if bot.phase == "online":
            try:
                await bot.leave()
                bot.ended = "stayed to the end"
            except Exception:  # the run is over: a failing goodbye changes no figure
                bot.close_now()
        bot.close_now()

    def _jobs(self):
        for bot_spec in self.scenario.bots:
            if isinstance(bot_spec, Bot):
                # Only a bot that waits for lines keeps them: a crowd's are never kept.
                waits = any(s.action in ("expect", "login", "kick") for s in bot_spec.script)
                bot = BotRun(self, bot_spec.nick, keep_lines=waits)
                self.bots.append(bot)
                yield self._guard(bot, self._script(bot, bot_spec.script))
            else:
                for index, nick in enumerate(bot_spec.nicks()):
                    bot = BotRun(self, nick, keep_lines=False, group=bot_spec.group)
                    self.bots.append(bot)
                    yield self._guard(bot, self._group_bot(bot, bot_spec, index))

    async def _guard(self, bot: BotRun, job) -> None:
        """A bug in a step is that bot's error, never the end of the run."""
        try:
            await job
        except (Unreachable, asyncio.CancelledError):
            raise
        except ConnectionError:
            if bot.phase == "online":
                bot.error("connection lost while sending")
        except Exception as error:  # report it as the bot's error rather than a traceback
            bot.error(f"internal error: {type(error).__name__}: {error}")

    async def _script(self, bot: BotRun, script: list[Step]) -> None:
        previous_end = self.start
        for number, step in enumerate(script):
            if step.at is not None:
                await self.sleep_until(self.due(step.at))
            elif step.after is not None:
                await self.sleep_until(previous_end + step.after / self.speed)
            action = step.action
            # Not the phase: once the server has closed the connection a kicked bot is offline.
            if bot.kicked_by is not None:
                return  # a kicked bot's remaining steps are skipped; being kicked is no error
            if bot.phase == "offline" and action not in ("join", "wait"):
                if bot.refused is None and not bot.errors:
                    bot.error(f"script[{number}] {action}: not connected")
                return
            await self._step(bot, step)
            previous_end = self.now()

    async def _step(self, bot: BotRun, step: Any) -> None:
        action = step.action
        scale = self.speed
        if action == "join":
            await bot.join(step.outcome)
        elif action == "say":
            await bot.say(step.text)
        elif action == "command":
            await bot.command(step.text)
        elif action == "expect":
            await bot.expect(step.text, step.within / scale)
        elif action == "login":
            await bot.login(step.password)
        elif action == "kick":
            await bot.kick(step.nick, step.reason)
        elif action == "wait":
            await asyncio.sleep(step.for_ / scale)
        elif action == "leave":
            await bot.leave()
        elif action == "drop":
            await bot.drop()
        elif action == "reconnect":
            await bot.reconnect()

    async def _group_bot(self, bot: BotRun, group: Group, index: int) -> None:
        share = index / group.count
        await self.sleep_until(self.due(group.join.at + group.join.spread * share))
        if not await bot.join():
            return
        leave_at = (
            self.due(group.leave.at + group.leave.spread * share) if group.leave else math.inf
        )
        chatter = group.chatter
        if chatter is not None:
            until = min(
                leave_at, self.due(chatter.until) if chatter.until is not None else math.inf
            )
            every, jitter = chatter.every / self.speed, chatter.jitter / self.speed
            when = self.now() + bot.rng.uniform(0, every)  # bots do not speak in chorus
            while when < until and bot.phase == "online":
                await self.sleep_until(when)
                if bot.phase != "online":
                    return
                await bot.say(bot.rng.choice(chatter.messages))
                when += every + bot.rng.uniform(-jitter, jitter)
        if group.leave is not None and bot.phase == "online":
            await self.sleep_until(leave_at)
            await (bot.drop() if group.leave.how == "drop" else bot.leave())

    async def _observe(self, at: float) -> None:
        await self.sleep_until(self.due(at))
        if self.take_snapshot is not None:
            at_s = round(self.elapsed(), 3)
            rows = await asyncio.to_thread(self.take_snapshot)
            self.snapshots.append(Snapshot(at_s, rows))


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def _engine_cost(cpu_before: float) -> dict[str, float]:
    cost = {"cpu_s": round(_cpu_seconds() - cpu_before, 3)}
    with contextlib.suppress(ImportError):
        import resource

        cost["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return cost
