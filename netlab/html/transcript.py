"""A simulate run's timeline read back from its transcript (``netlab simulate --transcript``).

The HTML report draws ``document["timeline"]``, in the shape the run itself records it
(netlab/sim/timeline.py; docs/reports.md lists the keys). For a report without one, this
rebuilds it from the transcript, whose lines are ``SECONDS NICK DIRECTION TEXT``: ``>`` sent,
``<`` received, ``*`` a connection event, ``!`` an error. Chat lines are parsed with the
protocol's own parser, and copies count as lost as the ledger counts them (CLARIFICATIONS: not
arrived when the receiver departs or the run ends, unless sent within 2 s of that moment).
The transcript's times are to the millisecond, so are these latencies.
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
PARTINGS = ("leave", "drop", "kick", "disconnect")


@dataclass
class _Sent:
    t: float
    sender: str
    text: str
    recipients: list[tuple[str, float]] = field(default_factory=list)  # (bot, latency ms)


@dataclass
class _Reader:
    """The run replayed line by line: who is online, what each receiver still awaits."""

    outcomes: dict[str, str]
    pending: dict[str, dict[str, deque[_Sent]]] = field(default_factory=dict)
    missed: dict[str, list[float]] = field(default_factory=dict)  # passed-over send times
    messages: list[_Sent] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    losses: list[dict[str, Any]] = field(default_factory=list)
    end: float = 0.0

    def event(self, t: float, bot: str, kind: str, detail: str = "") -> None:
        self.events.append({"t": t, "bot": bot, "kind": kind, "detail": detail})

    def line(self, t: float, nick: str, direction: str, text: str) -> None:
        self.end = max(self.end, t)
        if direction == "*":
            self.connection(t, nick, text)
        elif direction == "!":
            self.event(t, nick, "error", text)
        elif direction == ">" and nick in self.pending:
            self.sent(t, nick, text)
        elif direction == "<" and nick in self.pending:
            self.received(t, nick, text)

    def connection(self, t: float, nick: str, text: str) -> None:
        if text == "registered":
            self.pending[nick] = defaultdict(deque)
            self.missed[nick] = []
            self.event(t, nick, "join")
        elif text.startswith("refused"):
            self.event(t, nick, "refused", text.partition(": ")[2])
        elif text.startswith("connection closed") and nick in self.pending:
            outcome = self.outcomes.get(nick, "")
            kind = {"dropped": "drop", "disconnected": "disconnect"}.get(outcome, "leave")
            self.depart(t, nick, kind, outcome)

    def depart(self, t: float, nick: str, kind: str | None, detail: str = "") -> None:
        horizon = t - IN_FLIGHT_S
        waited = [m.t for queue in self.pending.pop(nick).values() for m in queue]
        lost = sum(1 for sent in [*waited, *self.missed.pop(nick)] if sent <= horizon)
        if lost:
            self.losses.append({"t": t, "bot": nick, "copies": lost})
        if kind is not None:
            self.event(t, nick, kind, detail)

    def sent(self, t: float, nick: str, text: str) -> None:
        if text.startswith("/") or text == p.handout_leaving(nick):
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
        if text.startswith(p.KICKED_BY):
            self.depart(t, nick, "kick", text[len(p.KICKED_BY) :])
            return
        chat = p.parse_server_line(text)
        if type(chat) is not p.Chat:
            return
        queue = self.pending[nick].get(chat.nick)
        wanted = clean(chat.text)
        while queue:
            message = queue.popleft()
            if message.text == wanted:
                message.recipients.append((nick, round((t - message.t) * 1000, 3)))
                return
            self.missed[nick].append(message.t)  # one sender's messages come in order


def timeline(lines: Iterable[str], document: dict[str, Any] | None = None) -> dict[str, Any]:
    """The timeline of a transcript; ``document`` (the run's report) tells how each bot ended
    (its ``bots[].outcome``), which the transcript alone does not say."""
    bots = (document or {}).get("bots")
    bots = [b for b in bots if isinstance(b, dict)] if isinstance(bots, list) else []
    reader = _Reader({b.get("nick"): str(b.get("outcome") or "") for b in bots})
    for raw in lines:
        found = _LINE.match(raw.rstrip("\n"))
        if found:
            reader.line(float(found[1]), found[2], found[3], found[4])
    for nick in sorted(reader.pending):
        reader.depart(reader.end, nick, None)
    return {
        "source": "transcript",
        "step_s": 1.0,
        "seconds": _seconds(reader),
        "events": reader.events,
        "lost": reader.losses,
        "messages": [
            {
                "t": m.t,
                "sender": m.sender,
                "text": m.text,
                "delivered": len(m.recipients),
                "recipients": [{"bot": bot, "latency_ms": ms} for bot, ms in m.recipients],
            }
            for m in reader.messages
        ],
        "recipients_kept": True,
    }


def _seconds(reader: _Reader) -> list[dict[str, Any]]:
    """One row per second: counts in that second, bots connected at its end."""
    count = int(reader.end) + 1  # the last row holds the last event
    rows = [
        {"t": float(s), "sent": 0, "delivered": 0, "lost": 0, "errors": 0, "connected": 0}
        for s in range(count)
    ]
    latencies: list[list[float]] = [[] for _ in rows]

    def at(t: float) -> int:
        return min(int(t), count - 1)

    for message in reader.messages:
        rows[at(message.t)]["sent"] += 1
        for _, ms in message.recipients:
            arrived = at(message.t + ms / 1000)
            rows[arrived]["delivered"] += 1
            latencies[arrived].append(ms)
    for loss in reader.losses:
        rows[at(loss["t"])]["lost"] += loss["copies"]
    change = [0] * count
    for event in reader.events:
        if event["kind"] == "error":
            rows[at(event["t"])]["errors"] += 1
        elif event["kind"] == "join":
            change[at(event["t"])] += 1
        elif event["kind"] in PARTINGS:
            change[at(event["t"])] -= 1
    online = 0
    for row, values, step in zip(rows, latencies, change, strict=True):
        online += step
        latency = percentiles(values, 3)
        row.update(connected=online, latency_ms={k: latency[k] for k in ("p50", "p95", "p99")})
    return rows


def with_transcript(document: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """``document`` with the ``timeline`` read from the transcript at ``path``, unless it has
    one already (the run's own is exact to the microsecond)."""
    if isinstance(document.get("timeline"), dict):
        return document
    with open(path, encoding="utf-8", errors="replace") as lines:
        return {**document, "timeline": timeline(lines, document)}
