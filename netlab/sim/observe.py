"""Socket snapshots of the chat port during a run (the scenario's ``observe.sockets``), and
how the summary shows one: the table ``netlab sockets`` prints."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from netlab.sim.results import Snapshot

if TYPE_CHECKING:
    from netlab.sim.engine import Simulation

SOCKET_ROWS_SHOWN = 24
"""Above this many rows the summary shows the first ones and a count: a crowd's hundreds of
rows would bury it (the report file has them all)."""

Rows = list[dict[str, Any]]


def _config(port: int):
    from netlab.sockwatch import SocketsConfig

    return SocketsConfig(port=port)


def taker(port: int) -> Callable[[], Rows]:
    """A function that reads the sockets of ``port`` now (it blocks: run it in a thread)."""

    def take() -> Rows:
        from netlab import sockwatch

        return sockwatch.snapshot(_config(port)).rows

    return take


def renderer(port: int) -> Callable[[Rows], str]:
    """How the summary prints a snapshot of ``port``."""
    from netlab import sockwatch, tables

    config = _config(port)

    def render(rows: Rows) -> str:
        if len(rows) <= SOCKET_ROWS_SHOWN:
            return sockwatch.render(rows, config)
        shown = tables.render(rows[:SOCKET_ROWS_SHOWN], config.columns(), config.fmt)
        more = f"... and {len(rows) - SOCKET_ROWS_SHOWN} more rows (all in the --report file)"
        return f"{shown}\n{more}\n{sockwatch.summary(rows)}"

    return render


async def observe(sim: Simulation, at: float) -> None:
    """At scenario time ``at``, take a snapshot into ``sim.snapshots``."""
    await sim.sleep_until(sim.due(at))
    if sim.take_snapshot is not None:
        at_s = round(sim.elapsed(), 3)
        rows = await asyncio.to_thread(sim.take_snapshot)
        sim.snapshots.append(Snapshot(at_s, rows))
