"""Where ``netlab simulate`` writes: standard output that survives a closed pipe, standard
error, and the live progress line (on a terminal only)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.console import Console

    from netlab.sim.engine import Simulation


class PipeSafe:
    """Standard output that goes quiet when the reader has gone (``| head -2``): the run goes
    on and its exit status stays the verdict's, rather than 1 ("an expectation failed") from a
    BrokenPipeError."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.broken = False

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                self.stream.write(text)
            except BrokenPipeError:
                self._gone()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._gone()

    def _gone(self) -> None:
        self.broken = True
        # The interpreter flushes stdout once more at exit: point it at nothing, so that
        # last flush cannot fail and print "Exception ignored ... BrokenPipeError".
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding: as the stream's
        return getattr(self.stream, name)


_OUT: PipeSafe | None = None


def stdout() -> Console:
    """A console on standard output; every write is flushed (``tail``, ``tee`` see it now)."""
    from rich.console import Console

    global _OUT
    if _OUT is None or _OUT.stream is not sys.stdout:
        _OUT = PipeSafe(sys.stdout)
    return Console(file=_OUT, highlight=False, soft_wrap=True)  # type: ignore[arg-type]


def stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def say(console: Console, text: str, style: str | None = None) -> None:
    """One block of text, as it is (no markup), and flushed at once."""
    console.print(text, style=style, markup=False)
    console.file.flush()


async def progress(sim: Simulation) -> None:
    """One live line on standard error while the run goes on, led by what runs where (the
    scenario, the server's address and the protocol; the bots are in ``online N/M``), short
    enough for 80 columns; it goes away at the end."""
    from rich.live import Live
    from rich.text import Text

    console = stderr()
    if not console.is_terminal:
        return

    def line() -> Text:
        errors = sum(len(bot.result.errors) for bot in sim.bots)
        text = Text()
        text.append(f" {sim.scenario.name}  {sim.target}  {sim.protocol} ", style="bold reverse")
        text.append(f" {sim.elapsed():6.1f}s", style="bold")
        text.append(f"  online {sim.online}/{sim.scenario.bot_count()}")
        text.append(f"  sent {sim.ledger.sent}")
        text.append(f"  delivered {sim.ledger.delivered}")
        if errors:
            text.append(f"  errors {errors}", style="bold red")
        return text

    with Live(line(), console=console, transient=True, refresh_per_second=8) as live:
        while True:
            await asyncio.sleep(0.125)
            live.update(line())
