"""The one table template of netlab: every command that prints rows prints them through here.

    from netlab import tables
    print(tables.render(rows, {"proto": "Proto", "recv_q": "Recv-Q"}, fmt="table"))

``rows`` are dicts (looked up by key) or sequences (in column order). ``headers`` is either a
list of column names or a ``{key: title}`` mapping: human formats show the titles, the machine
formats (``json``, ``csv``) use the keys, so scripts get stable names like ``recv_q``.

Formats: ``table`` (the default human look), ``json`` (a list of objects, ``null`` where a
value is unknown), ``csv`` (header row of keys, empty field where unknown) and every format
name of tabulate (``github``, ``grid``, ``plain``, ...). Human formats print ``-`` for unknown.

tabulate is imported only when a human format is rendered: it costs more start-up time than
everything else a short command such as ``netlab sockets --format json`` needs.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

MISSING = "-"
"""What human formats print where a value is None (unknown or not applicable)."""

TABLE = "table"
OWN_FORMATS = (TABLE, "json", "csv")
_TABLE_STYLE = "simple"  # netstat-like: a header, a dashed rule, aligned columns

Row = Mapping[str, Any] | Sequence[Any]
Headers = Sequence[str] | Mapping[str, str]


def _formats() -> tuple[str, ...]:
    from tabulate import tabulate_formats

    return (*OWN_FORMATS, *(f for f in tabulate_formats if f not in OWN_FORMATS))


def __getattr__(name: str) -> Any:
    # FORMATS is computed on first use so that importing this module stays free of tabulate.
    if name == "FORMATS":
        return _formats()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def check_format(fmt: str) -> str:
    """Return ``fmt`` if it is a known format name, else raise ValueError naming them all."""
    if fmt in OWN_FORMATS:
        return fmt
    formats = _formats()
    if fmt not in formats:
        raise ValueError(f"unknown format {fmt!r}; choose one of: {', '.join(formats)}")
    return fmt


def render(rows: Iterable[Row], headers: Headers, fmt: str = TABLE) -> str:
    """The rows as text in format ``fmt`` (no trailing newline); ValueError on unknown fmt."""
    keys = list(headers)
    titles = [headers[key] for key in keys] if isinstance(headers, Mapping) else keys
    matrix = [
        [row.get(key) for key in keys] if isinstance(row, Mapping) else list(row) for row in rows
    ]
    if fmt == "json":
        return json.dumps([dict(zip(keys, values, strict=True)) for values in matrix], indent=2)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(keys)
        writer.writerows(matrix)  # csv writes None as an empty field
        return out.getvalue().rstrip("\n")
    check_format(fmt)
    from tabulate import tabulate

    # Numbers are right-aligned by their Python type, never guessed from text, so that a
    # nickname such as "007" stays as typed (tabulate's number parsing would print 7).
    columns = list(zip(*matrix, strict=True)) or [() for _ in keys]
    return tabulate(
        matrix,
        headers=titles,
        tablefmt=_TABLE_STYLE if fmt == TABLE else fmt,
        missingval=MISSING,
        disable_numparse=True,
        colalign=["right" if _is_numeric(column) else "left" for column in columns] or None,
    )


def _is_numeric(column: Sequence[Any]) -> bool:
    known = [value for value in column if value is not None]
    return bool(known) and all(
        isinstance(value, (int, float)) and not isinstance(value, bool) for value in known
    )
