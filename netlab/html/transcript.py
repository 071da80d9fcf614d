"""A simulate run's timeline read back from its transcript (``netlab simulate --transcript``).

The HTML report draws ``document["timeline"]`` (its keys: docs/reports.md). Until the report
JSON carries one of its own, this rebuilds it from the transcript, whose lines are
``SECONDS NICK DIRECTION TEXT`` (netlab/bots.py ``Simulation.record``): ``>`` sent, ``<``
received, ``*`` a connection event, ``!`` an error. Chat lines are parsed with the protocol's
own parser, and a copy counts as lost as the ledger counts it (CLARIFICATIONS: not arrived
when its receiver departs or the run ends, unless sent within 2 s of that moment).
"""

from __future__ import annotations

import re
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netlab import protocol as p
from netlab.sim.ledger import IN_FLIGHT_S, clean
from netlab.stats import percentiles

_LINE = re.compile(r"^\s*(\d+(?:\.\d+)?) (\S+) ([<>*!]) ?(.*)$")
KICKED = "You were kicked by "


@dataclass
class _Sent:
    t: float
    sender: str
    text: str
    deliveries: list[list[Any]] = field(default_factory=list)  # [receiver, t]
    lost: list[str] = field(default_factory=list)


@dataclass
class _Reader:
    """The run replayed line by line: who is online, what each receiver still awaits."""

    outcomes: dict[str, str]
    online: set[str] = field(default_factory=set)
    pending: dict[str, dict[str, deque[_Sent]]] = field(default_factory=dict)
    messages: list[_Sent] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    end: float = 0.0

    def event(self, t: float, bot: str, kind: str, detail: str = "") -> None:
        self.events.append({"t": t, "bot": bot, "kind": kind, "detail": detail})

    def line(self, t: float, nick: str, direction: str, text: str) -> None:
        self.end = max(self.end, t)
        if direction == "*":
            self.connection(t, nick, text)
        elif direction == "!":
            self.errors.append(t)
            self.event(t, nick, "error", text)
        elif direction == ">" and nick in self.online:
            self.sent(t, nick, text)
        elif direction == "<" and nick in self.online:
            self.received(t, nick, text)

    def connection(self, t: float, nick: str, text: str) -> None:
        if text == "registered":
            self.online.add(nick)
            self.pending[nick] = defaultdict(deque)
            self.event(t, nick, "join")
        elif text.startswith("refused"):
            self.event(t, nick, "refused", text.partition(": ")[2])
        elif text.startswith("connection closed") and nick in self.online:
            outcome = self.outcomes.get(nick, "")
            kind = "drop" if outcome in ("dropped", "disconnected") else "leave"
            if outcome.endswith("stayed to the end"):
                kind = "end"  # the run ended: not a leaving to mark on the line
            self.depart(t, nick, kind, outcome)

    def depart(self, t: float, nick: str, kind: str, detail: str) -> None:
        self.online.discard(nick)
        for queue in self.pending.pop(nick, {}).values():
            for message in queue:
                if message.t <= t - IN_FLIGHT_S:
                    message.lost.append(nick)
                    self.losses.append(t)
        self.event(t, nick, kind, detail)

    def sent(self, t: float, nick: str, text: str) -> None:
        if text.startswith("/") or text == f"{nick} has left the chat.":
            return  # a command, or the handout client's way of leaving: no chat copy
        text = clean(text)
        if not text:
            return
        message = _Sent(t, nick, text)
        self.messages.append(message)
        for receiver, queues in self.pending.items():
            if receiver != nick:
                queues[nick].append(message)

    def received(self, t: float, nick: str, text: str) -> None:
        if text.startswith(KICKED):
            self.depart(t, nick, "kick", text[len(KICKED) :])
            return
        chat = p.parse_server_line(text)
        if type(chat) is not p.Chat:
            return
        queue = self.pending[nick].get(chat.nick)
        wanted = clean(chat.text)
        while queue:
            message = queue.popleft()
            if message.text == wanted:
                message.deliveries.append([nick, t])
                return
            message.lost.append(nick)  # passed over: one sender's messages come in order
            self.losses.append(t)


def timeline(lines: Iterable[str], document: dict[str, Any] | None = None) -> dict[str, Any]:
    """The timeline of a transcript; ``document`` (the run's report) tells how each bot ended
    (its ``bots[].outcome``), which the transcript alone does not say."""
    outcomes = {bot.get("nick"): str(bot.get("outcome") or "") for bot in _bots(document)}
    reader = _Reader(outcomes)
    for raw in lines:
        found = _LINE.match(raw.rstrip("\n"))
        if found:
            reader.line(float(found[1]), found[2], found[3], found[4])
    for nick in sorted(reader.online):
        reader.depart(reader.end, nick, "end", "online at the end")
    return {
        "source": "transcript",
        "step_s": 1.0,
        "series": _series(reader),
        "events": reader.events,
        "messages": [
            {"t": m.t, "from": m.sender, "text": m.text, "deliveries": m.deliveries, "lost": m.lost}
            for m in reader.messages
        ],
    }


def _bots(document: dict[str, Any] | None) -> list[dict[str, Any]]:
    bots = (document or {}).get("bots")
    return [bot for bot in bots if isinstance(bot, dict)] if isinstance(bots, list) else []


def _series(reader: _Reader) -> list[dict[str, Any]]:
    """One row per second: counts in that second, bots connected at its end."""
    seconds = int(reader.end) + 1  # the last row holds the last event
    rows = [
        {"t": s, "sent": 0, "delivered": 0, "lost": 0, "errors": 0, "connected": 0}
        for s in range(seconds)
    ]
    latencies: list[list[float]] = [[] for _ in rows]

    def at(t: float) -> int:
        return min(int(t), seconds - 1)

    for message in reader.messages:
        rows[at(message.t)]["sent"] += 1
        for _, t in message.deliveries:
            rows[at(t)]["delivered"] += 1
            latencies[at(t)].append((t - message.t) * 1000)
    for t in reader.losses:
        rows[at(t)]["lost"] += 1
    for t in reader.errors:
        rows[at(t)]["errors"] += 1
    change = [0] * (seconds + 1)
    for event in reader.events:
        if event["kind"] == "join":
            change[at(event["t"])] += 1
        elif event["kind"] in ("leave", "drop", "kick"):
            change[at(event["t"])] -= 1
    online = 0
    for row, values in zip(rows, latencies, strict=True):
        online += change[row["t"]]
        row["connected"] = online
        # Latency in ms, to 0.001 ms (a loopback copy takes well under one).
        row.update({k: v for k, v in percentiles(values, 3).items() if k != "max"})
    return rows


def with_transcript(document: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """``document`` with the ``timeline`` read from the transcript at ``path``, unless it has
    one already (the run's own is exact to the microsecond; a transcript's to the ms)."""
    if isinstance(document.get("timeline"), dict):
        return document
    with open(path, encoding="utf-8", errors="replace") as lines:
        return {**document, "timeline": timeline(lines, document)}
