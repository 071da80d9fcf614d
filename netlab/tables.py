"""The one table template of netlab: every command that prints rows prints them through here.

    from netlab import tables
    print(tables.render(rows, {"proto": "Proto", "recv_q": "Recv-Q"}, fmt="table"))

``rows`` are dicts (looked up by key) or sequences (in column order). ``headers`` is either a
list of column names or a ``{key: title}`` mapping: human formats show the titles, the machine
formats (``json``, ``csv``) use the keys, so scripts get stable names like ``recv_q``.

Formats: ``table`` (the default human look), ``json`` (a list of objects, ``null`` where a
value is unknown), ``csv`` (header row of keys, empty field where unknown) and every format
name of tabulate (``github``, ``grid``, ``plain``, ...). Human formats print ``-`` for unknown.

Text is shown, never obeyed: in every format but JSON a control or format character (an
escape sequence in a nickname, a bidi override in a program name) is printed as its escape,
``\\x1b``, ``\\u202e`` (``visible``); JSON has its own escapes (``\\u001b``).

Format ``table`` fits the terminal (``shutil.get_terminal_size()``: COLUMNS, else the terminal,
else 80): when it would be wider, the columns the caller names in ``wrap`` (free text such as
a description) wrap onto more lines, by tabulate's ``maxcolwidths``. Other columns (numbers,
nicknames, ids) never wrap, and every other format is left as wide as its data.

tabulate is imported only when a human format is rendered: it costs more start-up time than
everything else a short command such as ``netlab sockets --format json`` needs.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import unicodedata
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

MISSING = "-"
"""What human formats print where a value is None (unknown or not applicable)."""

TABLE = "table"
OWN_FORMATS = (TABLE, "json", "csv")
_TABLE_STYLE = "simple"  # netstat-like: a header, a dashed rule, aligned columns
_COMPACT = "netlab-compact"  # the same with one space between columns and untouched titles
MIN_WRAP = 12
"""Cells a wrapped column keeps at the least, however narrow the terminal: a few words a line."""

Row = Mapping[str, Any] | Sequence[Any]
Headers = Sequence[str] | Mapping[str, str]

# Control (Cc), format (Cf: bidi overrides, zero-width), line/paragraph separators, surrogates.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def _formats() -> tuple[str, ...]:
    from tabulate import tabulate_formats

    return (*OWN_FORMATS, *(f for f in tabulate_formats if f not in OWN_FORMATS))


def check_format(fmt: str) -> str:
    """Return ``fmt`` if it is a known format name, else raise ValueError naming them all."""
    if fmt in OWN_FORMATS:
        return fmt
    formats = _formats()
    if fmt not in formats:
        raise ValueError(f"unknown format {fmt!r}; choose one of: {', '.join(formats)}")
    return fmt


def visible(text: str) -> str:
    """``text`` safe to print on a terminal: each control or format character is replaced by
    its escape (``\\x1b``, ``\\u202e``, ``\\U000e0001``), so it is seen and never acted on."""
    if text.isprintable():  # the usual case, in C
        return text
    return "".join(
        _escape(ch) if unicodedata.category(ch) in _HIDDEN_CATEGORIES else ch for ch in text
    )


def _escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def cell_width(text: str) -> int:
    """Terminal cells ``text`` takes (CJK and emoji take two), as tabulate measures them."""
    try:
        from wcwidth import wcswidth
    except ImportError:  # tabulate then measures with len() too
        return len(text)
    width = wcswidth(text)
    return width if width >= 0 else len(text)


def render(
    rows: Iterable[Row],
    headers: Headers,
    fmt: str = TABLE,
    compact: bool = False,
    wrap: Collection[str] = (),
    width: int | None = None,
) -> str:
    """The rows as text in format ``fmt`` (no trailing newline); ValueError on unknown fmt.

    Format ``table`` only: ``compact`` puts one space between columns and no padding around
    the titles: the narrowest table that still reads as one. ``wrap`` names the columns (by
    key) whose text may wrap so that the table fits ``width`` cells (None: the terminal's)."""
    keys = list(headers)
    titles = [headers[key] for key in keys] if isinstance(headers, Mapping) else keys
    matrix = [
        [row.get(key) for key in keys] if isinstance(row, Mapping) else list(row) for row in rows
    ]
    if fmt == "json":
        return json.dumps([dict(zip(keys, values, strict=True)) for values in matrix], indent=2)
    matrix = [[_shown(value) for value in values] for values in matrix]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(keys)
        writer.writerows(matrix)  # csv writes None as an empty field
        return out.getvalue().rstrip("\n")
    check_format(fmt)
    # Numbers are right-aligned by their Python type, never guessed from text, so that a
    # nickname such as "007" stays as typed (tabulate's number parsing would print 7).
    columns = list(zip(*matrix, strict=True)) or [() for _ in keys]
    arguments = {
        "headers": [visible(title) for title in titles],
        "tablefmt": _TABLE_STYLE if fmt == TABLE else fmt,
        "missingval": MISSING,
        "disable_numparse": True,
        "colalign": ["right" if _is_numeric(column) else "left" for column in columns] or None,
    }
    compact = compact and fmt == TABLE
    if fmt != TABLE or not wrap or not keys:
        return _tabulate(matrix, arguments, compact)
    limit = shutil.get_terminal_size().columns if width is None else width
    wrapping = [key in wrap for key in keys]
    # As far as needed to fit: as it is; the free text wrapped; if the other columns leave it
    # too little room, the spacing tightened too (as ``compact``), the free text wrapped again.
    for tight in dict.fromkeys((compact, True)):
        text = _tabulate(matrix, arguments, tight)
        if _widest(text) <= limit:
            return text
        padding, gap = (0, " ") if tight else (2, "  ")
        # The widths tabulate gave each column, read off the dashed rule under the titles.
        widths = [len(run) for run in text.split("\n")[1].split(gap)]
        floors = [max(MIN_WRAP, cell_width(title) + padding) for title in arguments["headers"]]
        limits = _wrap_widths(widths, wrapping, floors, limit, len(gap))
        needed = sum(w if cap is None else cap for w, cap in zip(widths, limits, strict=True))
        if needed + len(gap) * (len(widths) - 1) <= limit or tight:
            wrapped = {"maxcolwidths": limits, "break_on_hyphens": False}  # "look-alike" whole
            return _tabulate(matrix, {**arguments, **wrapped}, tight)
    raise AssertionError("unreachable: the tight layout is always returned")


def _widest(text: str) -> int:
    return max(map(cell_width, text.split("\n")))


def _wrap_widths(
    widths: list[int], wrapping: list[bool], floors: list[int], limit: int, gap: int
) -> list[int | None]:
    """Each column's ``maxcolwidths``: None for those that keep their width; the room left
    beside them is shared out among the wrapping ones, narrowest first, so that a column
    which fits its even share keeps its width and the widest wrap (never below its floor)."""
    fixed = sum(w for w, wraps in zip(widths, wrapping, strict=True) if not wraps)
    room = limit - fixed - gap * (len(widths) - 1)
    pending = sorted((i for i, wraps in enumerate(wrapping) if wraps), key=widths.__getitem__)
    limits: list[int | None] = [None] * len(widths)
    while pending and widths[pending[0]] <= room // len(pending):
        room -= widths[pending.pop(0)]
    for n, i in enumerate(pending):
        share = room // len(pending) + int(n < room % len(pending))
        limits[i] = max(share, floors[i])
    return limits


def _tabulate(matrix: list[list[Any]], arguments: dict[str, Any], compact: bool) -> str:
    import tabulate

    if not compact:
        return tabulate.tabulate(matrix, **arguments)
    if _COMPACT not in tabulate.multiline_formats:
        # tabulate lays out multi-line (wrapped) cells only in a format it knows by name; the
        # name stays out of tabulate_formats (listed at its import), so no user can ask for it.
        tabulate._table_formats[_COMPACT] = _compact_style(tabulate)
        tabulate.multiline_formats[_COMPACT] = _COMPACT
    padding = tabulate.MIN_PADDING
    tabulate.MIN_PADDING = 0  # the titles' padding; tabulate has no argument for it
    try:
        return tabulate.tabulate(matrix, **{**arguments, "tablefmt": _COMPACT})
    finally:
        tabulate.MIN_PADDING = padding


def _compact_style(tabulate: Any) -> Any:
    rule = tabulate.Line("", "-", " ", "")
    row = tabulate.DataRow("", " ", "")
    return tabulate.TableFormat(rule, rule, None, rule, row, row, 0, ["lineabove", "linebelow"])


def _shown(value: Any) -> Any:
    return visible(value) if isinstance(value, str) else value


def _is_numeric(column: Sequence[Any]) -> bool:
    known = [value for value in column if value is not None]
    return bool(known) and all(
        isinstance(value, (int, float)) and not isinstance(value, bool) for value in known
    )
