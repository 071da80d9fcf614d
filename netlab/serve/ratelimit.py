"""The rate limit: a token bucket per connection, and the rule that drops a flooder."""

from __future__ import annotations

from collections import deque
from typing import Literal

FLOOD_WINDOW = 10.0
"""Seconds over which dropped messages are counted against ``flood_disconnect``."""


class TokenBucket:
    """``rate`` messages a second on average, ``burst`` at once. Time is passed in."""

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.stamp = now

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


Verdict = Literal["pass", "drop", "warn", "disconnect"]


class RateLimit:
    """What to do with one message: let it ``pass``, ``drop`` it silently, ``warn`` (a drop
    the sender is told about, at most once a second), or ``disconnect`` a persistent flooder
    (``flood_disconnect`` drops within ten seconds)."""

    def __init__(self, rate: float, burst: int, flood_disconnect: int, now: float) -> None:
        self.bucket = TokenBucket(rate, burst, now) if rate > 0 else None
        self.flood_disconnect = flood_disconnect
        self.drops: deque[float] = deque()

    def check(self, now: float) -> Verdict:
        if self.bucket is None or self.bucket.take(now):
            return "pass"
        drops = self.drops
        drops.append(now)
        while drops and now - drops[0] > FLOOD_WINDOW:
            drops.popleft()
        if len(drops) >= self.flood_disconnect:
            return "disconnect"
        if len(drops) == 1 or now - drops[-2] > 1:
            return "warn"
        return "drop"


class LoginThrottle:
    """A brake on guessing the operator password.

    After ``per_address`` wrong passwords within ``window`` seconds from one address, every
    ``/login`` from there (the right password too) is refused until that window has passed;
    ``overall`` wrong ones from all addresses together close ``/login`` for everyone the same
    way, so that many addresses do not add up to a fast guesser.
    """

    def __init__(self, per_address: int = 3, overall: int = 30, window: float = 60.0) -> None:
        self.per_address, self.overall, self.window = per_address, overall, window
        self._wrong: dict[str, deque[float]] = {}
        self._all: deque[float] = deque()

    def _prune(self, times: deque[float], now: float) -> deque[float]:
        while times and now - times[0] >= self.window:
            times.popleft()
        return times

    def refused_for(self, host: str, now: float) -> float | None:
        """Seconds ``/login`` from ``host`` stays refused, or None when it may try."""
        mine = self._prune(self._wrong.get(host, deque()), now)
        if not mine:
            self._wrong.pop(host, None)
        for times, limit in ((mine, self.per_address), (self._prune(self._all, now), self.overall)):
            if len(times) >= limit:
                return self.window - (now - times[0])
        return None

    def failed(self, host: str, now: float) -> bool:
        """Count a wrong password; True when it is the one that closes ``/login`` (say so once)."""
        mine = self._wrong.setdefault(host, deque())
        mine.append(now)
        self._all.append(now)
        return len(mine) == self.per_address or len(self._all) == self.overall
