"""A simulate run over time, as Chart.js configurations, from ``document["timeline"]`` as
the run records it (netlab/sim/timeline.py, or netlab/html/transcript.py from a transcript):

    {"step_s": 1.0,
     "seconds": [{"t", "sent", "delivered", "latency_ms": {"p50", "p95", "p99"}, "connected",
                  "lost", "errors"}],
     "events": [{"t", "bot", "kind": join|leave|drop|kick|refused|disconnect|error, "detail"}],
     "lost": [{"t", "bot", "copies"}],
     "messages": [{"t", "sender", "text", "delivered", "recipients": [{"bot", "latency_ms"}]}]}

Times are seconds since the run began, latencies ms; ``recipients`` only for a small cast.
Every key may be missing: a chart without its data is None (the page says "no data").
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from typing import Any

from netlab.html.page import PALETTE

MARKS = {  # event kind -> (legend label, point style, colour)
    "join": ("joins", "triangle", "#1a7f37"),
    "leave": ("leaves", "circle", "#59636e"),
    "kick": ("kicks", "crossRot", "#c62828"),
    "refused": ("refusals", "rect", "#b26a00"),
    "drop": ("drops", "rectRot", "#8250df"),
    "disconnect": ("disconnected by the server", "rectRounded", "#c62828"),
    "error": ("errors", "star", "#c62828"),
}
PARTINGS = ("leave", "drop", "kick", "disconnect")
MAX_MESSAGES = 3000
"""Messages drawn on the swimlane at most; a longer run shows every n-th (and says so)."""
FOLD_ABOVE = 40
"""More bots than this: each group of same-named bots (guest1, guest2...) is one lane."""


def _list(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def parts(timeline: Any) -> tuple[list[dict], list[dict], list[dict], list[dict]]:
    """The timeline's ``seconds``, ``events``, ``lost`` and ``messages``, each a list."""
    timeline = timeline if isinstance(timeline, dict) else {}
    return tuple(_list(timeline.get(key)) for key in ("seconds", "events", "lost", "messages"))


def _axes(y: str, end: float | None, **more: Any) -> dict[str, Any]:
    """Time on x (0 to ``end``, the run's duration, so that the charts line up), ``y`` up."""
    x: dict[str, Any] = {
        "type": "linear",
        "min": 0,
        "title": {"display": True, "text": "seconds since the start"},
    }
    if end:
        x["max"] = end
        x["ticks"] = {"includeBounds": False}  # no odd last tick at 20.003 s
    scales = {
        "x": x,
        "y": {"beginAtZero": True, "title": {"display": True, "text": y}},
        **more,
    }
    return {"interaction": {"mode": "nearest", "intersect": False}, "scales": scales}


def _line(label: str, points: list[dict], color: str, **more: Any) -> dict[str, Any]:
    return {
        "label": label,
        "data": points,
        "borderColor": color,
        "backgroundColor": color + "33",
        "pointRadius": 2,
        **more,
    }


def _marks(label: str, points: list[dict], style: str, color: str, **more: Any) -> dict:
    return {
        "type": "scatter",
        "label": label,
        "data": points,
        "pointStyle": style,
        "pointRadius": 7,
        "pointHoverRadius": 9,
        "borderColor": color,
        "backgroundColor": color + "aa",
        "borderWidth": 2,
        "showLine": False,
        **more,
    }


def rates(series: list[dict], end: float | None = None) -> dict[str, Any] | None:
    """Messages sent and copies delivered per second; copies lost and errors where they were."""
    if not series:
        return None

    def points(key: str) -> list[dict]:
        return [{"x": r.get("t"), "y": r.get(key)} for r in series]

    def spots(key: str, what: str) -> list[dict]:
        return [
            {
                "x": r.get("t"),
                "y": r.get(key),
                "label": f"{r.get(key)} {what} in second {r.get('t', 0):g}",
            }
            for r in series
            if r.get(key)
        ]

    datasets = [
        _line("messages sent / s", points("sent"), PALETTE[0], yAxisID="y"),
        _line("copies delivered / s", points("delivered"), PALETTE[1], yAxisID="y1", fill=True),
        _marks("copies lost", spots("lost", "copies lost"), "crossRot", "#c62828", yAxisID="y1"),
        _marks("errors", spots("errors", "errors"), "star", "#8250df", yAxisID="y"),
    ]
    y1 = {
        "position": "right",
        "beginAtZero": True,
        "grid": {"drawOnChartArea": False},
        "title": {"display": True, "text": "copies per second"},
    }
    return {
        "type": "line",
        "data": {"datasets": datasets},
        "options": _axes("messages per second", end, y1=y1),
    }


def latency(series: list[dict], end: float | None = None) -> dict[str, Any] | None:
    """Latency percentiles of the copies delivered in each second."""

    def ms(row: dict, key: str) -> Any:
        latency = row.get("latency_ms")
        return latency.get(key) if isinstance(latency, dict) else None

    if not any(ms(r, k) is not None for r in series for k in ("p50", "p95", "p99")):
        return None
    datasets = [
        _line(
            f"{key} ms",
            [{"x": r.get("t"), "y": ms(r, key)} for r in series],
            color,
            spanGaps=False,
            pointRadius=3,
        )
        for key, color in (("p50", PALETTE[1]), ("p95", PALETTE[3]), ("p99", PALETTE[6]))
    ]
    return {"type": "line", "data": {"datasets": datasets}, "options": _axes("latency (ms)", end)}


def _connected(events: list[dict]) -> list[tuple[float, int]]:
    online, steps = 0, [(0.0, 0)]
    for event in sorted(events, key=lambda e: e.get("t") or 0):
        kind = event.get("kind")
        online += 1 if kind == "join" else -1 if kind in PARTINGS else 0
        steps.append((event.get("t") or 0, online))
    return steps


def _said(event: dict) -> str:
    detail = f": {event['detail']}" if event.get("detail") else ""
    return f"{event.get('t', 0):.2f} s {event.get('bot')} {event.get('kind')}{detail}"


def connected(
    events: list[dict], series: list[dict], end: float | None = None
) -> dict[str, Any] | None:
    """Bots connected, with each join, leave, kick, refusal, drop and error marked on it."""
    if events:
        steps = _connected(events)
    elif any(r.get("connected") is not None for r in series):
        steps = [(r.get("t") or 0, r.get("connected")) for r in series]
    else:
        return None
    line = _line(
        "bots connected",
        [{"x": t, "y": n} for t, n in steps],
        PALETTE[0],
        stepped="before",  # in Chart.js: the count holds until the next event, then steps
        fill=True,
        pointRadius=0,
    )
    level = dict(steps)
    datasets = [line]
    for kind, (label, style, color) in MARKS.items():
        points = [
            {"x": e.get("t"), "y": level.get(e.get("t"), 0), "label": _said(e)}
            for e in events
            if e.get("kind") == kind
        ]
        if points:
            datasets.append(_marks(label, points, style, color))
    return {"type": "line", "data": {"datasets": datasets}, "options": _axes("bots connected", end)}


def _lane_names(events: list[dict], messages: list[dict]) -> dict[str, str]:
    """Each bot's lane: its own, or its group's when there are many bots."""
    bots: dict[str, None] = {}
    for item in sorted([*events, *messages], key=lambda e: e.get("t") or 0):
        bots.setdefault(str(item.get("bot", item.get("sender"))), None)
    if len(bots) <= FOLD_ABOVE:
        return {bot: bot for bot in bots}
    stems = {bot: re.sub(r"[-_]?\d+$", "", bot) or bot for bot in bots}
    sizes = Counter(stems.values())
    return {
        bot: f"{stem} ({sizes[stem]} bots)" if sizes[stem] > 1 else bot
        for bot, stem in stems.items()
    }


def swimlane(
    events: list[dict], messages: list[dict], lost: list[dict] = (), end: float | None = None
) -> tuple[dict | None, dict[str, Any]]:
    """A lane per bot (or group): each message a mark on its sender's lane, its deliveries
    a fan on hover, joins, leaves and losses marked, the time online shaded. Returns the config
    and the page script's extras (``lanes``, ``spans``, ``note`` when messages were thinned)."""
    if not messages and not events:
        return None, {}
    lane_of = _lane_names(events, messages)
    names = list(dict.fromkeys(lane_of.values()))
    index = {bot: names.index(lane) for bot, lane in lane_of.items()}
    step = max(1, -(-len(messages) // MAX_MESSAGES))
    points = []
    for message in messages[::step]:
        sender, t = str(message.get("sender")), message.get("t") or 0
        copies = [
            (str(r.get("bot")), r["latency_ms"])
            for r in _list(message.get("recipients"))
            if isinstance(r.get("latency_ms"), (int, float))
        ]
        first: dict[int, float] = {}  # one fan line per lane: to its first copy
        for bot, ms in copies:
            lane = index.get(bot, 0)
            first[lane] = min(first.get(lane, ms), ms)
        label = [f"{t:.2f} s {sender}: {message.get('text', '')}"]
        label.append(_deliveries(copies, message.get("delivered"), len(lane_of) > FOLD_ABOVE))
        fan = [[round(t + ms / 1000, 6), lane, 0] for lane, ms in first.items()]
        points.append({"x": t, "y": index.get(sender, 0), "label": label, "fan": fan})
    datasets: list[dict] = [
        _marks("messages (hover: who got each)", points, "circle", PALETTE[0], pointRadius=5)
    ]
    for kind, (label, style, color) in MARKS.items():
        marks = [
            {"x": e.get("t"), "y": index.get(str(e.get("bot")), 0), "label": _said(e)}
            for e in events
            if e.get("kind") == kind
        ]
        if marks:
            datasets.append(_marks(label, marks, style, color, pointRadius=6))
    losses = [
        {
            "x": loss.get("t"),
            "y": index.get(str(loss.get("bot")), 0),
            "label": f"{loss.get('t', 0):.2f} s {loss.get('bot')} lost {loss.get('copies')} copies",
        }
        for loss in lost
    ]
    if losses:
        datasets.append(_marks("copies lost", losses, "crossRot", "#c62828", pointRadius=8))
    config = {
        "type": "scatter",
        "data": {"datasets": datasets},
        "options": {**_axes("bot", end), "interaction": {"mode": "nearest", "intersect": True}},
    }
    config["options"]["scales"]["y"] = {
        "type": "linear",
        "reverse": True,
        "min": -0.5,
        "max": len(names) - 0.5,
        "grid": {"display": False},
    }
    extra: dict[str, Any] = {"lanes": names, "spans": _spans(events, index, end)}
    if step > 1:
        extra["note"] = f"every {step}th of {len(messages)} messages is drawn"
    return config, extra


def _deliveries(copies: list[tuple[str, float]], delivered: Any, folded: bool) -> str:
    if not copies:  # a crowd's run keeps only the count
        return f"delivered to {delivered}" if delivered else "delivered to nobody"
    after = sorted((ms, bot) for bot, ms in copies)
    if folded or len(after) > 8:
        return f"delivered to {len(after)}, in {after[0][0]:.1f}-{after[-1][0]:.1f} ms"
    return "delivered to " + ", ".join(f"{bot} +{ms:.1f} ms" for ms, bot in after)


def _spans(events: list[dict], index: dict[str, int], end: float | None) -> list[list[float]]:
    """[lane, from, to] for each stretch a bot was online (a group's overlap into one); a bot
    online when the run ended is shaded to ``end``."""
    since: dict[str, float] = {}
    spans: dict[int, list[list[float]]] = defaultdict(list)
    end = end or max((e.get("t") or 0 for e in events), default=0)
    for event in sorted(events, key=lambda e: e.get("t") or 0):
        bot, kind, t = str(event.get("bot")), event.get("kind"), event.get("t") or 0
        if kind == "join":
            since[bot] = t
        elif kind in PARTINGS and bot in since:
            spans[index.get(bot, 0)].append([since.pop(bot), t])
    for bot, t in since.items():
        spans[index.get(bot, 0)].append([t, end])
    merged = []
    for lane, stretches in spans.items():
        stretches.sort()
        current = stretches[0]
        for start, stop in stretches[1:]:
            if start <= current[1]:
                current[1] = max(current[1], stop)
            else:
                merged.append([lane, *current])
                current = [start, stop]
        merged.append([lane, *current])
    return merged
