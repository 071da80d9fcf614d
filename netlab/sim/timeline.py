"""A run over time, as plain data for the report (and the HTML report to come, issue 15):
per second, the messages sent, the copies delivered and their latency, the bots connected;
every join, leave, drop, kick, refusal, disconnect and error with its time; every loss; and
every message with its sender, time and (for a small cast) who got it and how fast.

Times are seconds since the run began (the wall clock of the run, so at ``--speed 2`` a
scenario's 10 s take 5).
"""

from __future__ import annotations

import bisect
import math
from array import array
from typing import Any

from netlab.sim.ledger import BUCKET_S, Ledger
from netlab.stats import percentiles

STEP_S = BUCKET_S
"""One point per second (the ledger counts arrivals so)."""
JOINS = frozenset({"join"})
PARTINGS = frozenset({"leave", "drop", "kick", "disconnect"})
"""Marks that end a connection (a refusal never began one)."""
KINDS = ("join", "leave", "drop", "kick", "refused", "disconnect", "error")


class Marks:
    """What happened to whom and when, as the run goes: (time, bot, kind, detail)."""

    def __init__(self) -> None:
        self.items: list[tuple[float, str, str, str]] = []

    def add(self, now: float, bot: str, kind: str, detail: str = "") -> None:
        self.items.append((now, bot, kind, detail))


def _at(moment: float, start: float) -> float:
    return round(moment - start, 3)


def _bucket(moment: float, start: float, count: int) -> int:
    return min(count - 1, max(0, int((moment - start) // STEP_S)))


def build(ledger: Ledger, marks: Marks, end: float) -> dict[str, Any]:
    """The timeline of a run that began at ``ledger.origin`` and ended at ``end``."""
    start = ledger.origin
    count = max(1, math.ceil((end - start) / STEP_S))
    sent = [0] * count
    for message in ledger.messages:
        sent[_bucket(message.sent_at, start, count)] += 1
    # Per second, as the ledger keeps them (compact floats; a list of a crowd's 600,000
    # Python floats at once was 20 MB of the engine's peak). Late ones join the last second.
    latencies = [array("f") for _ in range(count)]
    for second, arrived in enumerate(ledger.arrivals):
        latencies[min(second, count - 1)].extend(arrived)
    lost = [0] * count
    for moment, _, copies in ledger.losses:
        lost[_bucket(moment, start, count)] += copies
    items = sorted(marks.items)
    errors = [0] * count
    for moment, _, kind, _ in items:
        if kind == "error":
            errors[_bucket(moment, start, count)] += 1
    changes = [(m, 1 if k in JOINS else -1) for m, _, k, _ in items if k in JOINS | PARTINGS]
    moments = [moment for moment, _ in changes]
    running, online = 0, []
    for _, step in changes:
        running += step
        online.append(running)
    seconds = []
    for second in range(count):
        # Bots connected at the end of this second (at the end of the run for the last one).
        edge = min(end, start + (second + 1) * STEP_S)
        index = bisect.bisect_right(moments, edge)
        latency = percentiles(latencies[second])
        seconds.append(
            {
                "t": second * STEP_S,
                "sent": sent[second],
                "delivered": len(latencies[second]),
                "latency_ms": {key: latency[key] for key in ("p50", "p95", "p99")},
                "connected": online[index - 1] if index else 0,
                "lost": lost[second],
                "errors": errors[second],
            }
        )
    return {
        "step_s": STEP_S,
        "seconds": seconds,
        "events": [
            {"t": _at(moment, start), "bot": bot, "kind": kind, "detail": detail}
            for moment, bot, kind, detail in items
        ],
        "lost": [
            {"t": _at(moment, start), "bot": bot, "copies": copies}
            for moment, bot, copies in ledger.losses
        ],
        "messages": [_message(message, start) for message in ledger.messages],
        "recipients_kept": ledger.recipients,
    }


def _message(message: Any, start: float) -> dict[str, Any]:
    found: dict[str, Any] = {
        "t": _at(message.sent_at, start),
        "sender": message.sender,
        "text": message.text,
        "delivered": message.delivered,
    }
    if message.recipients is not None:
        found["recipients"] = [
            {"bot": bot, "latency_ms": round(latency, 3)} for bot, latency in message.recipients
        ]
    return found
