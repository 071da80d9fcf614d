"""What ``netlab sockets`` shows: the table fitted to the terminal, ``--explain``, ``--watch``.

Below the width the whole table needs, columns go in a fixed order (``FIT_STEPS``): Proto
first, then the spacing tightens, then PID, ... Nick and State are never dropped nor narrowed:
they are what the lab looks at. ``--wide`` and output to a pipe or a file keep every column.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from netlab import tables
from netlab.sockets.config import MACHINE_FORMATS, SocketsConfig
from netlab.sockets.explain import explain
from netlab.sockets.rows import Row, summary

# (what, column): each step applies on top of the ones before, until the table fits.
FIT_STEPS = (
    ("drop", "proto"),  # tcp or tcp6 is plain from the address ([::1] is IPv6)
    ("compact", ""),  # one space between columns, shorter titles
    ("drop", "pid"),  # Program says whose socket it is; Nick tells clients apart
    ("narrow", "process"),
    ("drop", "send_q"),
    ("drop", "recv_q"),
    ("drop", "side"),
    ("drop", "process"),
)
NARROW = {"process": 8}  # cells a narrowed column keeps
SHORT_TITLES = {"local": "Local", "remote": "Foreign"}


@dataclass(frozen=True)
class Layout:
    """The columns shown and how: ``compact`` spacing, ``narrow`` columns cut to NARROW."""

    columns: Mapping[str, str]
    compact: bool = False
    narrow: frozenset[str] = field(default_factory=frozenset)

    def apply(self, what: str, key: str) -> Layout:
        if what == "drop":
            return replace(self, columns={k: v for k, v in self.columns.items() if k != key})
        if what == "narrow":
            return replace(self, narrow=self.narrow | {key})
        titles = {k: SHORT_TITLES.get(k, v) for k, v in self.columns.items()}
        return replace(self, columns=titles, compact=True)

    def width(self, cells: Mapping[str, int]) -> int:
        """The table's width, as tabulate lays it out, from each column's widest value."""
        padding, gap = (0, 1) if self.compact else (2, 2)
        widths = [
            max(
                min(cells[key], NARROW[key]) if key in self.narrow else cells[key],
                tables.cell_width(title) + padding,
            )
            for key, title in self.columns.items()
        ]
        return sum(widths) + gap * (len(widths) - 1)


def fit(rows: list[Row], columns: Mapping[str, str], width: int | None) -> Layout:
    """The layout of ``rows`` that fits ``width`` cells (None: every column, as it is)."""
    layout = Layout(columns)
    if width is None:
        return layout
    cells = {key: max((_cells(row.get(key)) for row in rows), default=0) for key in columns}
    for what, key in FIT_STEPS:
        if layout.width(cells) <= width:
            break
        if key in layout.columns or what == "compact":
            layout = layout.apply(what, key)
    return layout


def table(rows: list[Row], columns: Mapping[str, str], fmt: str, width: int | None) -> str:
    """The rows in ``fmt``; a ``table`` is fitted to ``width`` cells when one is given."""
    if fmt != tables.TABLE:
        return tables.render(rows, columns, fmt)
    layout = fit(rows, columns, width)
    if layout.narrow:
        rows = [
            {**row, **{key: _cut(row.get(key), NARROW[key]) for key in layout.narrow}}
            for row in rows
        ]
    return tables.render(rows, layout.columns, fmt, compact=layout.compact)


def render(rows: list[Row], config: SocketsConfig, width: int | None = None) -> str:
    """The rows as ``netlab sockets`` prints them: human formats get a summary line."""
    if config.explain:
        text = "\n".join(explain(row) for row in rows)
    else:
        text = table(rows, config.columns(), config.fmt, width)
    if config.fmt in MACHINE_FORMATS:
        return text
    if not rows:
        note = "(no sockets match" + (f" port {config.port}" if config.port else "") + ")"
        text = f"{text}\n{note}" if text else note
    return f"{text}\n{summary(rows)}"


def _cells(value: Any) -> int:
    return tables.cell_width(tables.MISSING if value is None else tables.visible(str(value)))


def _cut(value: Any, cells: int) -> Any:
    if not isinstance(value, str):
        return value
    text = tables.visible(value)
    return text if len(text) <= cells else text[: cells - 1] + "…"


# ---- --watch ------------------------------------------------------------------------------

MARK = "mark"  # the watch view's first column: "new" since the last frame, or "gone"
_STYLES = {"new": "bold green", "gone": "dim red strike"}


def watch(config: SocketsConfig, take: Callable[[], list[Row]]) -> int:
    """Redraw ``take()``'s rows in place every ``config.interval`` seconds until Ctrl-C."""
    from rich.console import Console
    from rich.live import Live

    shown: dict[tuple, Row] | None = None  # None: the first frame, nothing is new
    console = Console()
    if not console.is_terminal:
        return _watch_piped(config, take)
    try:
        with Live(console=console, auto_refresh=False) as live:
            while True:
                rows = take()
                width = None if config.wide or not console.is_terminal else console.width
                live.update(frame(rows, shown, config, width), refresh=True)
                shown = {_identity(row): row for row in rows}
                time.sleep(config.interval)
    except KeyboardInterrupt:
        pass  # the usual way to leave; the last frame stays on screen
    return 0


def _watch_piped(config: SocketsConfig, take: Callable[[], list[Row]]) -> int:
    """--watch into a pipe or a file: each frame whole (every column, nothing redrawn in
    place), written as it is taken, so that ``tail -f`` follows it."""
    shown: dict[tuple, Row] | None = None
    try:
        while True:
            rows = take()
            print(frame(rows, shown, config, None).plain, flush=True)
            shown = {_identity(row): row for row in rows}
            time.sleep(config.interval)
    except KeyboardInterrupt:
        pass
    return 0


def _identity(row: Row) -> tuple:
    return (row["proto"], row["local"], row["remote"])


def frame(
    rows: list[Row], before: dict[tuple, Row] | None, config: SocketsConfig, width: int | None
) -> Any:
    """One screen of --watch (a rich Text): rows new since ``before`` are marked "new", rows
    of ``before`` that went away are shown once more, marked "gone"."""
    from rich.text import Text

    now = {_identity(row) for row in rows}
    if before is None:
        before = {row_id: {} for row_id in now}
    marked = [{**row, MARK: "" if _identity(row) in before else "new"} for row in rows]
    gone = [{**row, MARK: "gone"} for row_id, row in before.items() if row_id not in now]
    screen = Text(no_wrap=not config.explain, overflow="fold" if config.explain else "crop")
    screen.append(
        f"netlab sockets{f' --port {config.port}' if config.port else ''}: every "
        f"{config.interval:g} s, {time.strftime('%H:%M:%S')}; Ctrl-C to leave\n\n",
        style="bold",
    )
    if config.explain:
        lines = [(row[MARK], f"{row[MARK] or '':4} {explain(row)}") for row in marked + gone]
    else:
        text = table(marked + gone, {MARK: "", **config.columns()}, config.fmt, width)
        lines = [(line.strip("|│┃ ").split(" ", 1)[0], line) for line in text.splitlines()]
    for mark, line in lines:
        screen.append(line + "\n", style=_STYLES.get(mark, ""))
    count_new = sum(1 for row in marked if row[MARK])
    screen.append(f"{summary(rows)}; {count_new} new, {len(gone)} gone")
    return screen
