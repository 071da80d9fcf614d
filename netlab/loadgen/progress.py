"""What a run shows while it runs: join progress and copies counted, drawn by rich on standard
error when that is a terminal (a pipe or a log gets nothing, the result says it all)."""

from __future__ import annotations

import sys
from typing import Any


class Progress:
    """Two bars, ``joining`` and ``copies``; a no-op off a terminal."""

    def __init__(self, clients: int, enabled: bool | None = None) -> None:
        self.live: Any = None
        if not (sys.stderr.isatty() if enabled is None else enabled):
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as Bars

        self.live = Bars(
            TextColumn("{task.description:>8}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.joining = self.live.add_task("joined", total=clients)
        self.copies: Any = None

    def __enter__(self) -> Progress:
        if self.live is not None:
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()

    def joined(self, count: int) -> None:
        if self.live is not None:
            self.live.update(self.joining, completed=count)

    def counted(self, delivered: int, expected: int) -> None:
        if self.live is None:
            return
        if self.copies is None:
            self.copies = self.live.add_task("copies", total=expected)
        self.live.update(self.copies, completed=delivered, total=expected)
