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

tabulate is imported only when a human format is rendered: it costs more start-up time than
everything else a short command such as ``netlab sockets --format json`` needs.
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

MISSING = "-"
"""What human formats print where a value is None (unknown or not applicable)."""

TABLE = "table"
OWN_FORMATS = (TABLE, "json", "csv")
_TABLE_STYLE = "simple"  # netstat-like: a header, a dashed rule, aligned columns

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


def render(rows: Iterable[Row], headers: Headers, fmt: str = TABLE, compact: bool = False) -> str:
    """The rows as text in format ``fmt`` (no trailing newline); ValueError on unknown fmt.

    ``compact`` (format ``table`` only) puts one space between columns and no padding around
    the titles: the narrowest table that still reads as one."""
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
    import tabulate

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
    if not (compact and fmt == TABLE):
        return tabulate.tabulate(matrix, **arguments)
    padding = tabulate.MIN_PADDING
    tabulate.MIN_PADDING = 0  # the titles' padding; tabulate has no argument for it
    try:
        return tabulate.tabulate(matrix, **{**arguments, "tablefmt": _compact_style(tabulate)})
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
