"""Join and leave notices, coalesced by a copy budget when a crowd arrives or leaves."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from netlab.serve.bus import Said
from netlab.serve.presence import Origin


class NoticeBatch:
    """Join or leave notices: one by one while they are few, one coalesced line a second
    when a crowd arrives or leaves (so that N arrivals cost O(N) lines, not O(N^2)).

    Each notice is copied to everyone in the chat (every server's people: ``room_size``), so
    the bigger the chat, the fewer go one by one: ``max(burst, budget / room_size)`` a second.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        publish: Callable[[Said], None],
        room_size: Callable[[], int],
        one: Callable[[str], str],
        many: Callable[[list[str]], str],
        burst: int,
        budget: int,
    ) -> None:
        self.loop, self.publish, self.room_size = loop, publish, room_size
        self.one, self.many = one, many
        self.burst, self.budget = burst, budget
        self.recent: deque[float] = deque()
        self.pending: list[str] = []
        self.timer: asyncio.TimerHandle | None = None

    def add(self, nick: str, exclude: Origin | None) -> None:
        now = time.monotonic()
        while self.recent and now - self.recent[0] > 1:
            self.recent.popleft()
        one_by_one = max(self.burst, self.budget // max(1, self.room_size()))
        if len(self.recent) < one_by_one and not self.pending:
            self.recent.append(now)
            self.publish(Said(self.one(nick), exclude))
            return
        self.pending.append(nick)
        if self.timer is None:
            self.timer = self.loop.call_later(1.0, self.flush)

    def flush(self) -> None:
        self.timer = None
        if self.pending:
            nicks, self.pending = self.pending, []
            self.recent.append(time.monotonic())
            self.publish(Said(self.many(nicks)))

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
