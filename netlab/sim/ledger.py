"""The accounting of a simulation, pure: no I/O, no clock.

Fed who joined, who sent what, who received what and who left, in time order, the ``Ledger``
knows every copy expected, delivered and lost, and each copy's latency. docs/scenarios.md is
the contract for what is counted and when.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from netlab import protocol as p

IN_FLIGHT_S = 2.0
"""A copy whose receiver leaves (or the run ends) within this long of its sending was still in
flight: it is not expected at all (CLARIFICATIONS: "when a copy counts as lost")."""
BUCKET_S = 1.0
"""The timeline's step: arrivals are counted per second."""


class Message:
    """One chat message a bot sent: shared by the pending queues of all its receivers."""

    __slots__ = ("delivered", "recipients", "sender", "sent_at", "text")

    def __init__(self, sender: str, text: str, sent_at: float, recipients: bool = False) -> None:
        self.sender, self.text, self.sent_at = sender, text, sent_at
        self.delivered = 0
        self.recipients: list[tuple[str, float]] | None = [] if recipients else None
        """(receiver, latency in ms) of each copy delivered, when the ledger keeps them."""


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

    def __init__(
        self,
        match: Literal["sender", "text"] = "sender",
        in_flight: float = IN_FLIGHT_S,
        recipients: bool = False,
        origin: float = 0.0,
    ) -> None:
        self.match = match
        self.in_flight = in_flight
        self.recipients = recipients
        """Keep who got each message (for a swimlane); a crowd's would be too many."""
        # Over time, for the timeline (netlab.sim.timeline): every message, the latencies of
        # the copies that arrived in each second since ``origin`` (4 bytes a copy: a crowd's
        # are hundreds of thousands), every loss.
        self.origin = origin
        self.messages: list[Message] = []
        self.arrivals: list[array] = []
        self.losses: list[tuple[float, str, int]] = []
        """(when, receiver, copies) each time a receiver's departure lost copies."""
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
        message = Message(bot, text, now, self.recipients)
        self.messages.append(message)
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
        latency = (now - message.sent_at) * 1000.0
        tally.latencies_ms.append(latency)
        second = max(0, int((now - self.origin) // BUCKET_S))
        while len(self.arrivals) <= second:
            self.arrivals.append(array("f"))
        self.arrivals[second].append(latency)
        message.delivered += 1
        if message.recipients is not None:
            message.recipients.append((window.bot, latency))
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
        lost = sum(1 for sent_at in window.missed if sent_at <= horizon)
        for queue in window.pending.values():
            self.pending -= len(queue)
            lost += sum(1 for message in queue if message.sent_at <= horizon)
        tally.lost += lost
        if lost:
            self.losses.append((now, window.bot, lost))

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
