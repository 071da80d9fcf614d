"""Socket snapshots in a report: each as the table ``netlab sockets`` prints, the sockets per
TCP state per snapshot as a chart, and a line explaining each state seen."""

from __future__ import annotations

from collections import Counter
from typing import Any

from netlab.html.page import PALETTE, Page, esc, nodata, table
from netlab.sockets.config import COLUMNS
from netlab.sockets.explain import MEANINGS

ROWS_OPEN = 40
"""A snapshot with more rows (a crowd's hundreds) keeps its table folded, all rows inside."""


def section(page: Page, snapshots: Any) -> str:
    """The "Sockets" part of a simulate report from its ``sockets`` list."""
    shots = [s for s in snapshots if isinstance(s, dict)] if isinstance(snapshots, list) else []
    if not shots:
        return "<h3>Sockets of the chat port</h3>" + nodata("Socket snapshots")
    counts = [Counter(str(r.get("state")) for r in _rows(shot)) for shot in shots]
    states = sorted({state for count in counts for state in count}, key=_state_order)
    labels = [f"{_at(shot)} s" for shot in shots]
    config = {
        "type": "bar",
        "data": {
            "labels": labels,
            "datasets": [
                {
                    "label": state,
                    "data": [count.get(state, 0) for count in counts],
                    "backgroundColor": PALETTE[i % len(PALETTE)],
                    "maxBarThickness": 90,
                }
                for i, state in enumerate(states)
            ],
        },
        "options": {
            "scales": {
                "x": {"stacked": True, "title": {"display": True, "text": "snapshot"}},
                "y": {
                    "stacked": True,
                    "beginAtZero": True,
                    "title": {"display": True, "text": "sockets"},
                },
            },
        },
    }
    explained = "".join(
        f"<li><b>{esc(state)}</b>: {esc(MEANINGS.get(state, 'a state read from the kernel'))}</li>"
        for state in states
    )
    parts = [
        page.chart(
            "Sockets per TCP state",
            config if states else None,
            "Both ends of each connection on the chat port, counted at each snapshot.",
        ),
        f'<ul class="states">{explained}</ul>',
    ]
    for shot in shots:
        rows = _rows(shot)
        shown = [c for c in COLUMNS if c != "side" or any(r.get("side") for r in rows)]
        grid = table(rows, {key: COLUMNS[key] for key in shown}, css="mono")
        said = f"{len(rows)} sockets: " + ", ".join(
            f"{n} {state}" for state, n in Counter(str(r.get("state")) for r in rows).items()
        )
        parts.append(f"<h3>Sockets of the chat port at {_at(shot)} s</h3>")
        if len(rows) > ROWS_OPEN:
            parts.append(f"<details><summary>{esc(said)}</summary>{grid}</details>")
        else:
            parts.append(f'{grid}<p class="muted">{esc(said)}</p>')
    return "".join(parts)


def _rows(shot: dict[str, Any]) -> list[dict[str, Any]]:
    rows = shot.get("rows")
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def _at(shot: dict[str, Any]) -> str:
    at = shot.get("at_s")
    return f"{at:.1f}" if isinstance(at, (int, float)) else "?"


def _state_order(state: str) -> tuple[int, str]:
    order = ("LISTEN", "ESTABLISHED", "CLOSE_WAIT", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT")
    return (order.index(state) if state in order else len(order), state)
