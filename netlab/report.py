"""What ``netlab simulate`` says about a run: the expectations' verdicts, the summary on the
terminal (through the one table template, netlab/tables.py) and the report JSON.

The report's keys are a contract (docs/scenarios.md): they may grow, never change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from netlab import tables
from netlab.protocol import nick_key
from netlab.sim.ledger import Tally
from netlab.sim.results import BotResult, RunResult
from netlab.stats import percentiles

PER_BOT_ROWS = 40
"""Above this many bots the summary shows a row per group (and every bot with an error);
the report file always has every bot."""


@dataclass
class Verdict:
    name: str
    passed: bool
    detail: str


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:g} ms"


def evaluate(result: RunResult) -> list[Verdict]:
    """Every expectation of the scenario, plus ``errors`` (none allowed unless it says)."""
    wanted, totals = result.scenario.expect, result.totals
    verdicts = []
    if wanted.delivery is not None:
        ratio = totals.delivered / totals.expected if totals.expected else 1.0
        verdicts.append(
            Verdict(
                f"delivery >= {wanted.delivery * 100:g}%",
                ratio >= wanted.delivery,
                f"{ratio * 100:.2f}% ({totals.delivered} of {totals.expected} copies)",
            )
        )
    latency = percentiles(totals.latencies_ms)
    for key in ("p50", "p95", "p99", "max"):
        limit = getattr(wanted, f"latency_{key}")
        if limit is None:
            continue
        measured = latency[key]
        verdicts.append(
            Verdict(
                f"latency {key} <= {_ms(limit)}",
                measured is None or measured <= limit * 1000,
                "no copy delivered" if measured is None else f"{measured:g} ms",
            )
        )
    errors = [f"{nick}: {text}" for nick, text in result.errors()]
    shown = "; ".join(errors[:3]) + (f"; and {len(errors) - 3} more" if len(errors) > 3 else "")
    verdicts.append(
        Verdict(f"errors <= {wanted.errors}", len(errors) <= wanted.errors, shown or "none")
    )
    if wanted.kicked is not None:
        kicked = [bot.nick for bot in result.bots if bot.kicked_by]
        verdicts.append(
            Verdict(
                f"kicked: {', '.join(wanted.kicked) or 'nobody'}",
                {nick_key(n) for n in kicked} == {nick_key(n) for n in wanted.kicked},
                ", ".join(f"{b.nick} by {b.kicked_by}" for b in result.bots if b.kicked_by)
                or "nobody was kicked",
            )
        )
    return verdicts


def _bot_row(nick: str, tally: Tally, errors: int, how: str) -> dict[str, Any]:
    latency = percentiles(tally.latencies_ms)
    return {
        "nick": nick,
        "sent": tally.sent,
        "expected": tally.expected,
        "delivered": tally.delivered,
        "lost": tally.lost,
        "p50": latency["p50"],
        "p99": latency["p99"],
        "max": latency["max"],
        "errors": errors,
        "outcome": how,
    }


BOT_COLUMNS = {
    "nick": "Bot",
    "sent": "Sent",
    "expected": "Expected",
    "delivered": "Delivered",
    "lost": "Lost",
    "p50": "p50 ms",
    "p95": "p95 ms",
    "p99": "p99 ms",
    "max": "max ms",
    "errors": "Errors",
    "outcome": "Outcome",
}
"""A bot's columns, as the HTML report shows them."""
TERMINAL_COLUMNS = {key: title for key, title in BOT_COLUMNS.items() if key != "p95"}
"""The terminal summary's narrower table: no p95."""


def bot_rows(result: RunResult) -> list[dict[str, Any]]:
    """A row per bot, or per group when there are many bots (with every bot that erred)."""
    if len(result.bots) <= PER_BOT_ROWS:
        return [
            _bot_row(bot.nick, bot.tally, len(bot.errors), bot.outcome()) for bot in result.bots
        ]
    rows = []
    by_group: dict[str, list[BotResult]] = {}
    for bot in result.bots:
        by_group.setdefault(bot.group or bot.nick, []).append(bot)
    for name, members in by_group.items():
        tally = Tally.merged(bot.tally for bot in members)
        errors = sum(len(bot.errors) for bot in members)
        label = name if len(members) == 1 else f"{name} ({len(members)} bots)"
        hows = sorted({bot.outcome() for bot in members})
        rows.append(_bot_row(label, tally, errors, hows[0] if len(hows) == 1 else "mixed"))
    return rows


def totals_row(result: RunResult) -> dict[str, Any]:
    totals = result.totals
    errors = len(result.errors())
    row = _bot_row(f"all {len(result.bots)} bots", totals, errors, "")
    row["outcome"] = f"{totals.foreign} foreign" if totals.foreign else None
    return row


def build(result: RunResult, verdicts: list[Verdict]) -> dict[str, Any]:
    """The report file's document."""
    totals = result.totals
    return {
        "scenario": result.scenario.name,
        "passed": all(v.passed for v in verdicts),
        "duration_s": round(result.duration_s, 3),
        "protocol": result.protocol,
        "target": result.target,
        "embedded_server": result.embedded,
        "speed": result.speed,
        "seed": result.seed,
        "cut_by_duration": result.cut_by_duration,
        "totals": {
            "bots": len(result.bots),
            "sent": totals.sent,
            "expected": totals.expected,
            "delivered": totals.delivered,
            "lost": totals.lost,
            "delivery_ratio": round(totals.delivered / totals.expected, 6)
            if totals.expected
            else None,
            "errors": len(result.errors()),
            "latency_ms": percentiles(totals.latencies_ms),
            "foreign": totals.foreign,
            "unexpected": totals.unexpected,
        },
        "bots": [
            {
                "nick": bot.nick,
                "sent": (tally := bot.tally).sent,
                "expected": tally.expected,
                "delivered": tally.delivered,
                "lost": tally.lost,
                "latency_ms": percentiles(tally.latencies_ms),
                "errors": list(bot.errors),
                "outcome": bot.outcome(),
                "kicked_by": bot.kicked_by,
                "refused": bot.refused,
                "foreign": tally.foreign,
                "unexpected": tally.unexpected,
            }
            for bot in result.bots
        ],
        "expectations": [
            {"name": v.name, "passed": v.passed, "detail": v.detail} for v in verdicts
        ],
        "sockets": [{"at_s": shot.at_s, "rows": shot.rows} for shot in result.snapshots],
        "engine": result.engine,
        "timeline": result.timeline,
    }


def header(name: str, bots: int, protocol: str, target: str, embedded: bool = False) -> str:
    """What runs where: ``demo: 7 bots, netlab protocol, embedded netlab serve on HOST:PORT``;
    printed before the first bot joins and again atop the summary."""
    where = f"embedded netlab serve on {target}" if embedded else target
    return f"{name}: {bots} bots, {protocol} protocol, {where}"


def summary(
    result: RunResult,
    verdicts: list[Verdict],
    sockets_render: Callable[[list[dict[str, Any]]], str] | None = None,
) -> list[tuple[str, str]]:
    """The summary as (style, text) blocks for a rich console: rich styles only the headings
    and the verdict; tables come from tables.py as they are."""
    blocks: list[tuple[str, str]] = []
    bots, protocol = len(result.bots), result.protocol
    head = header(result.scenario.name, bots, protocol, result.target, result.embedded)
    head += f", {result.duration_s:.1f}s"
    if result.speed != 1:
        head += f" at speed {result.speed:g}"
    if result.cut_by_duration:
        head += " (stopped by its duration)"
    blocks.append(("bold", head))
    rows = bot_rows(result)
    rows.append(totals_row(result))
    table = tables.render(rows, TERMINAL_COLUMNS, wrap={"outcome"})
    lines = table.split("\n")
    # A rule above the totals row, as under a column of figures. The row starts on the last
    # line with a name in the first column: a wrapped outcome goes on under a blank name.
    totals_at = max(i for i, line in enumerate(lines) if not line.startswith(" "))
    lines.insert(totals_at, lines[1])
    blocks.append(("", "\n".join(lines)))
    if len(result.bots) > PER_BOT_ROWS:
        blocks.append(("dim", "(a row per group; every bot is in the --report file)"))
    for shot in result.snapshots:
        blocks.append(("bold", f"Sockets of the chat port at {shot.at_s:.1f}s"))
        blocks.append(("", sockets_render(shot.rows) if sockets_render else str(shot.rows)))
    blocks.append(("bold", "Expectations"))
    table = tables.render(
        [
            {"result": "pass" if v.passed else "FAIL", "name": v.name, "detail": v.detail}
            for v in verdicts
        ],
        {"result": "Result", "name": "Expectation", "detail": "Measured"},
        wrap={"name", "detail"},
    )
    blocks.append(("", table))
    errors = result.errors()
    if errors:
        blocks.append(("bold red", "Errors"))
        shown = "\n".join(f"  {nick}: {text}" for nick, text in errors[:20])
        if len(errors) > 20:
            shown += f"\n  ... and {len(errors) - 20} more (see the --report file)"
        blocks.append(("red", shown))
    return blocks


def verdict_line(result: RunResult, verdicts: list[Verdict]) -> tuple[str, str]:
    failed = [v for v in verdicts if not v.passed]
    name = result.scenario.name
    if failed:
        return (
            "bold red",
            f"FAILED {name}: {len(failed)} of {len(verdicts)} expectations failed: "
            + ", ".join(v.name for v in failed),
        )
    count = len(verdicts)
    held = {1: "its expectation held", 2: "both expectations held"}.get(count)
    return ("bold green", f"PASSED {name}: {held or f'all {count} expectations held'}")
