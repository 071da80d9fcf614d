"""The one page template of netlab's HTML reports, and the small HTML pieces they share.

A report is a single file: the stylesheet, the charting library (Chart.js, vendored in
``vendor/``), the page script and the data all sit inline, so it opens offline and nothing is
fetched. The data comes twice, on purpose: the report's documents as JSON
(``<script id="netlab-data" type="application/json">``, for anyone who wants to reuse them) and
the Chart.js configuration of each chart (``netlab-charts``), which the page script draws.
"""

from __future__ import annotations

import html
import json
import sys
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from netlab import __version__

MISSING = "-"  # what a table shows where a value is unknown, as the terminal tables do
COLORS = {
    "pass": "#1a7f37",
    "fail": "#c62828",
    "warn": "#b26a00",
    "skip": "#6e7781",
    "error": "#8250df",
}
PALETTE = ("#0969da", "#1a7f37", "#bf3989", "#b26a00", "#8250df", "#0a7d8c", "#c62828")


def _asset(*parts: str) -> str:
    return resources.files("netlab.html").joinpath(*parts).read_text(encoding="utf-8")


def esc(value: Any) -> str:
    """Text for HTML: ``-`` for None, everything else escaped (nicks and chat are user text)."""
    return MISSING if value is None else html.escape(str(value), quote=True)


def script_json(data: Any) -> str:
    """JSON safe inside ``<script>``: no ``<`` at all (JSON's ``\\u003c`` instead), so no
    ``</script>`` or ``<!--`` in a chat text can end or confuse the element."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c")


def badge(outcome: str, text: str | None = None) -> str:
    return f'<span class="badge {esc(outcome)}">{esc(text or outcome)}</span>'


def number(value: float) -> str:
    """A figure as the terminal tables print it, never in e-notation: 7960000, 0.53, 2.
    (No thousands separators: a PID or a port is a number too.)"""
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return f"{value:.6g}" if abs(value) < 1e6 else f"{value:.0f}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def table(
    rows: Iterable[Mapping[str, Any]],
    columns: Mapping[str, str],
    *,
    sortable: bool = False,
    raw: Iterable[str] = (),
    css: str = "",
) -> str:
    """An HTML table of ``rows`` by ``columns`` (key -> title), numbers right-aligned.
    Values of the ``raw`` keys are HTML already (badges, links); every other value is text."""
    trusted = set(raw)
    classes = " ".join(c for c in ("sortable" if sortable else "", css) if c)
    head = "".join(f"<th>{esc(title)}</th>" for title in columns.values())
    body = []
    for row in rows:
        cells = []
        for key in columns:
            value = row.get(key)
            if key in trusted:
                cells.append(f"<td>{value if value is not None else MISSING}</td>")
            elif _is_number(value):
                cells.append(f'<td class="num" data-v="{value}">{number(value)}</td>')
            else:
                cells.append(f"<td>{esc(value)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (
        f'<table class="{classes}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def facts(pairs: Iterable[tuple[str, Any]]) -> str:
    """A definition list of label: value, for a report's header."""
    items = "".join(f"<dt>{esc(label)}</dt><dd>{esc(value)}</dd>" for label, value in pairs)
    return f'<dl class="facts">{items}</dl>'


def nodata(what: str) -> str:
    return f'<p class="nodata">{esc(what)}: no data in this report.</p>'


class Page:
    """One report being built: sections of HTML, and the charts they place."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.charts: list[dict[str, Any]] = []

    def chart(
        self,
        title: str,
        config: dict[str, Any] | None,
        caption: str = "",
        *,
        tall: bool = False,
        **extra: Any,
    ) -> str:
        """A figure drawing Chart.js ``config``; None (nothing to draw) says "no data".
        ``extra`` goes to the page script with the config: ``lanes`` (names of a swimlane's
        lanes, by y value) and ``spans`` ([lane, from, to] bars behind them)."""
        if config is None:
            return f"<h3>{esc(title)}</h3>{nodata(title)}"
        chart_id = f"chart-{len(self.charts) + 1}"
        self.charts.append({"id": chart_id, "title": title, "config": config, **extra})
        size = "plot tall" if tall else "plot"
        note = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
        return (
            f"<h3>{esc(title)}</h3><figure>"
            f'<div class="{size}"><canvas id="{chart_id}" role="img" aria-label="{esc(title)}">'
            f"</canvas></div>{note}</figure>"
        )

    def render(self, body: str, data: Any) -> str:
        """The whole file: ``body`` HTML, ``data`` the report's documents as JSON."""
        return (
            "<!DOCTYPE html>\n"
            '<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="generator" content="netlab {esc(__version__)}">'
            f"<title>{esc(self.title)}</title>"
            f"<style>{_asset('assets', 'report.css')}</style></head><body>\n"
            f"{body}\n"
            f'<script id="netlab-data" type="application/json">{script_json(data)}</script>\n'
            f'<script id="netlab-charts" type="application/json">{script_json(self.charts)}'
            "</script>\n"
            f"<script>{_asset('vendor', 'chart.umd.min.js')}</script>\n"
            f"<script>{_asset('assets', 'report.js')}</script>\n"
            "</body></html>\n"
        )


def unwritable(path: str | Path) -> str | None:
    """Why no report can be written to ``path``, asked before a run so that a long run is
    not lost to a typo; None when it can be (a file made only to ask is removed again)."""
    target = Path(path)
    if target.is_dir():
        return f"cannot write {path}: it is a directory"
    existed = target.exists()
    try:
        with open(target, "a", encoding="utf-8"):
            pass
    except OSError as error:
        return f"cannot write {path}: {error.strerror or error}"
    if not existed:
        target.unlink(missing_ok=True)
    return None


def write(path: str | Path, text: str) -> None:
    """Write a report; OSError is the caller's to turn into a one-line message."""
    Path(path).write_text(text, encoding="utf-8")


def save(command: str, path: str | Path, text: str) -> bool:
    """Write a report for ``netlab COMMAND --html`` and say so on standard error, where it
    is (``netlab simulate: wrote demo.html``), or in one line why not; True once written."""
    try:
        write(path, text)
    except OSError as error:
        why = error.strerror or error
        print(f"netlab {command}: --html: cannot write {path}: {why}", file=sys.stderr)
        return False
    print(f"netlab {command}: wrote {path} (one file: open it in a browser)", file=sys.stderr)
    return True


def line_chart(
    labels: list[Any],
    series: Mapping[str, list[Any]],
    *,
    y_title: str,
    x_title: str = "seconds",
    stacked: bool = False,
    kind: str = "line",
) -> dict[str, Any] | None:
    """A Chart.js line (or bar) chart of named series over ``labels``; None when every value
    is missing (a chart of nothing would only look broken)."""
    if not any(v is not None for values in series.values() for v in values):
        return None
    datasets = [
        {
            "label": name,
            "data": values,
            "borderColor": PALETTE[i % len(PALETTE)],
            "backgroundColor": PALETTE[i % len(PALETTE)] + ("cc" if kind == "bar" else "33"),
            "pointRadius": 2,
            "spanGaps": False,
        }
        for i, (name, values) in enumerate(series.items())
    ]
    axis: dict[str, Any] = {"stacked": stacked}
    return {
        "type": kind,
        "data": {"labels": labels, "datasets": datasets},
        "options": {
            "interaction": {"mode": "index", "intersect": False},
            "scales": {
                "x": {**axis, "title": {"display": True, "text": x_title}},
                "y": {**axis, "beginAtZero": True, "title": {"display": True, "text": y_title}},
            },
        },
    }
