"""The bot engine of ``netlab simulate``: many scripted chat clients in one asyncio process.

The entry module: its parts live in ``netlab.sim`` (see that package's docstring), and what
the command and the tests use is named here. docs/scenarios.md is the contract for what is
counted and when.
"""

from netlab.sim.bot import Bot, Unreachable
from netlab.sim.engine import Simulation
from netlab.sim.ledger import IN_FLIGHT_S, Ledger, Tally
from netlab.sim.results import BotResult, RunResult, Snapshot

__all__ = [
    "IN_FLIGHT_S",
    "Bot",
    "BotResult",
    "Ledger",
    "RunResult",
    "Simulation",
    "Snapshot",
    "Tally",
    "Unreachable",
]
