"""What the user sends: paced under the server's rate limit, and shown once accepted.

netlab serve drops what a client sends over its rate limit (10 messages a second, bursts of
20, by default) and disconnects a client that keeps flooding; a paste of 80 lines used to end
that way. So every line the user sends waits in a queue and leaves through a token bucket of
the client's own, a little under the server's limit, and the screen shows how many still wait.

The server never tells the sender a message was accepted, only when it was refused (muted, too
long, over the rate). So the user's own line is shown once ``CONFIRM_AFTER`` has passed since
it was written with no refusal come back, or marked refused when one does: the server answers
a client's lines in order, so a refusal belongs to the oldest line not yet settled.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from netlab import protocol as p
from netlab.chatclient.connection import Connection
from netlab.render import Screen, refused

RATE = 10.0
BURST = 20
"""The server's limit until it says: netlab serve's defaults (``ServerConfig``). The client asks
with ``/limits`` as it joins (netlab protocol) and paces under the answer; a server that is
stricter than it says answers ``Slow down: over N messages a second``, and the client slows to
that."""
MARGIN = 0.9
"""The client paces at this share of the server's rate, and leaves two of its burst unused, so
that jitter between the two clocks never spends the server's last token."""
CONFIRM_AFTER = 0.25
"""Seconds after a line was written with no refusal back: it was accepted."""


def refusal(text: str) -> tuple[str, float | None] | None:
    """``("muted" | "too long" | "rate", the server's rate or None)`` when ``text`` is the
    server refusing a message, else None."""
    if text == p.MUTED:
        return ("muted", None)
    if p.parse_line_too_long(text) is not None:
        return ("too long", None)
    if (rate := p.parse_slow_down(text)) is not None:
        return ("rate", rate)
    return None


class Pacer:
    """A token bucket; time is passed in."""

    def __init__(self, rate: float = RATE, burst: int = BURST, now: float = 0.0) -> None:
        self.rate = rate * MARGIN
        self.burst = max(1, burst - 2)
        self.tokens = float(self.burst)
        self.stamp = now

    def _refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait(self, now: float) -> float:
        """Seconds until a message may go."""
        self._refill(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self, now: float) -> None:
        self._refill(now)
        self.tokens -= 1

    def adopt(self, rate: float, burst: int, now: float) -> None:
        """The server's own limit (``/limits``); rate 0: it has none."""
        self._refill(now)
        self.rate = rate * MARGIN if rate > 0 else float("inf")
        self.burst = max(1, burst - 2) if rate > 0 else 1 << 30
        self.tokens = min(self.tokens, self.burst) if rate > 0 else float(self.burst)

    def slow_to(self, rate: float, now: float) -> None:
        """The server said its rate is ``rate``: pace under it from now, with no burst."""
        self._refill(now)
        self.rate = min(self.rate, max(rate, 0.1) * MARGIN)
        self.burst, self.tokens = 1, 0.0


@dataclass
class Outgoing:
    text: str
    echo: str | None
    """The line as the others see it, shown once accepted; None: nothing to show (commands)."""
    sent_at: float = 0.0


class Outbox:
    """The user's lines on their way out, in order."""

    def __init__(
        self,
        conn: Connection,
        screen: Screen,
        paced: bool = True,
        changed: Callable[[], None] = lambda: None,
    ) -> None:
        self.conn, self.screen, self.changed = conn, screen, changed
        self.pacer = Pacer(now=time.monotonic()) if paced else None
        self.queue: deque[Outgoing] = deque()
        self._asked_limits = self.pacer is not None and conn.protocol is p.Dialect.netlab
        self.unsettled: deque[Outgoing] = deque()
        self._more = asyncio.Event()
        self._settling = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def queued(self) -> int:
        return len(self.queue)

    def put(self, text: str, echo: str | None = None) -> None:
        self.queue.append(Outgoing(text, echo))
        self._idle.clear()
        self._more.set()
        self.changed()

    async def run(self) -> None:
        """Send what is queued, paced; settle what was sent (both until cancelled)."""
        settler = asyncio.create_task(self._settle())
        try:
            if self._asked_limits:
                await self.conn.say("/limits")  # its answer sets the pace, and is not shown
            while True:
                if not self.queue:
                    self._more.clear()
                    if not self.unsettled:
                        self._idle.set()
                    await self._more.wait()
                    continue
                if self.pacer is not None:
                    while (delay := self.pacer.wait(time.monotonic())) > 0:
                        await asyncio.sleep(delay)
                    self.pacer.take(time.monotonic())
                item = self.queue.popleft()
                self.changed()
                await self.conn.say(item.text)
                if item.echo is not None:
                    item.sent_at = time.monotonic()
                    self.unsettled.append(item)
                    self._settling.set()
        finally:
            settler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await settler

    async def _settle(self) -> None:
        while True:
            if not self.unsettled:
                self._settling.clear()
                if not self.queue:
                    self._idle.set()
                await self._settling.wait()
                continue
            due = self.unsettled[0].sent_at + CONFIRM_AFTER - time.monotonic()
            if due > 0:
                await asyncio.sleep(due)
                continue
            item = self.unsettled.popleft()
            assert item.echo is not None
            await self.screen.show([item.echo])

    async def refused(self, text: str) -> bool:
        """Act on a line from the server; True when it was a refusal shown with its line, or
        the answer to the client's own ``/limits`` (not shown either)."""
        if self._asked_limits and (limits := p.parse_limits(text)) is not None:
            self._asked_limits = False
            if self.pacer is not None:
                self.pacer.adopt(limits[0], limits[1], time.monotonic())
            return True
        found = refusal(text)
        if found is None:
            return False
        kind, rate = found
        if kind == "rate" and rate is not None and self.pacer is not None:
            self.pacer.slow_to(rate, time.monotonic())
        if not self.unsettled:
            return False
        item = self.unsettled.popleft()
        assert item.echo is not None
        await self.screen.print([refused(p.parse_server_line(item.echo), text, self.screen.me)])
        return True

    async def drained(self) -> None:
        """Until everything queued has been sent and settled."""
        await self._idle.wait()
