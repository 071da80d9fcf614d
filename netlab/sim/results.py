"""What a run leaves behind, as plain data: the summary, the report and the JSON read these,
never the live bots or the ledger."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from netlab.scenario import Scenario
from netlab.sim.ledger import Tally


@dataclass
class BotResult:
    """One bot's run, over all of its connections."""

    nick: str
    group: str | None
    tally: Tally
    errors: list[str] = field(default_factory=list)
    kicked_by: str | None = None
    refused: str | None = None
    """The last refusal, when the bot's last join was refused."""
    refusals: int = 0
    """Refusals the script expected (``outcome: refused``)."""
    ended: str | None = None
    """How its connection ended: ``left``, ``dropped``, ``disconnected``, ``stayed to the end``."""

    def outcome(self) -> str:
        """How the bot's run went, in a few words."""
        if self.kicked_by:
            return f"kicked by {self.kicked_by}"
        if self.refused is not None:
            return f"refused: {self.refused}"
        how = self.ended or "-"
        if self.refusals:
            how = f"refused as expected, then {how}"
        return how


@dataclass
class Snapshot:
    """The chat port's sockets at ``at_s`` seconds into the run, as ``netlab sockets`` rows."""

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
    bots: list[BotResult]
    totals: Tally
    snapshots: list[Snapshot]
    speed: float = 1.0
    seed: int = 0
    cut_by_duration: bool = False
    engine: dict[str, float] = field(default_factory=dict)
    """What this process spent: ``cpu_s`` during the run, ``max_rss_mb`` at its end."""
    timeline: dict[str, Any] = field(default_factory=dict)
    """The run over time (``netlab.sim.timeline``): per second, events, losses, messages."""

    def bot(self, nick: str) -> BotResult:
        return next(bot for bot in self.bots if bot.nick == nick)

    def errors(self) -> list[tuple[str, str]]:
        """Every bot's errors as (nick, error), in bot order."""
        return [(bot.nick, text) for bot in self.bots for text in bot.errors]
