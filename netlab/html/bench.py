"""The HTML report of ``netlab bench``: the figures of a run, its latency percentiles and
copies, and over time (when the document has a ``timeline``) deliveries per second, latency and
the server's CPU and RSS; for a side-by-side run, the servers next to each other.

Input: the ``--format json`` document (netlab/bench.py ``BenchResult`` as a dict), with the
optional keys docs/reports.md lists: ``timeline`` ``[{"t", "deliveries_per_s", "p50", "p95",
"p99", "server_cpu_pct", "server_rss_mb"}]``, and for ``--compare``
``{"servers": [{"name", "rounds": [document, ...]}]}``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from netlab import stats
from netlab.html.page import PALETTE, Page, badge, esc, line_chart, nodata, table

PERCENTILES = ("p50", "p95", "p99", "max")
COMPARED = (  # key in a bench document -> what the side-by-side table calls it
    ("deliveries_per_s", "deliveries per second"),
    ("latency_ms_p50", "latency p50 (ms)"),
    ("latency_ms_p99", "latency p99 (ms)"),
    ("server_cpu_us_per_copy", "server CPU per copy (µs)"),
    ("server_cpu_pct", "server CPU (%)"),
    ("lost", "copies lost"),
)


def _figures(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows ``netlab bench`` prints, through its own ``result_rows``; any keys it does
    not know follow, so that nothing in the document is hidden."""
    from netlab.loadgen.config import BenchResult
    from netlab.loadgen.output import result_rows

    known = {f.name for f in dataclasses.fields(BenchResult)}
    rows: list[dict[str, Any]] = []
    try:
        result = BenchResult(**{k: v for k, v in document.items() if k in known})
        rows = [{"metric": label, "value": value} for label, value in result_rows(result)]
    except TypeError:  # not a whole result: show its keys as they are
        known = set()
    shown = {"notes", "timeline", "complete"} | known
    rows += [
        {"metric": key, "value": value}
        for key, value in document.items()
        if key not in shown and not isinstance(value, (dict, list))
    ]
    return rows


def _percentiles(document: dict[str, Any]) -> dict[str, Any] | None:
    values = [document.get(f"latency_ms_{k}") for k in PERCENTILES]
    return line_chart(
        list(PERCENTILES), {"latency (ms)": values}, y_title="ms", x_title="percentile", kind="bar"
    )


def _copies(document: dict[str, Any]) -> dict[str, Any] | None:
    keys = ("expected", "delivered", "lost", "echoed")
    return line_chart(
        list(keys),
        {"copies": [document.get(k) for k in keys]},
        y_title="copies",
        x_title="",
        kind="bar",
    )


def _over_time(page: Page, document: dict[str, Any]) -> str:
    rows = [r for r in document.get("timeline") or [] if isinstance(r, dict)]
    t = [r.get("t") for r in rows]

    def series(*keys: str) -> dict[str, list[Any]]:
        return {key: [r.get(key) for r in rows] for key in keys}

    cpu = line_chart(t, series("server_cpu_pct"), y_title="% of one core") if rows else None
    rss = line_chart(t, series("server_rss_mb"), y_title="MB") if rows else None
    return "".join(
        [
            page.chart(
                "Deliveries per second over the run",
                line_chart(t, series("deliveries_per_s"), y_title="copies / s") if rows else None,
            ),
            page.chart(
                "Latency over the run",
                line_chart(t, series("p50", "p95", "p99"), y_title="ms") if rows else None,
            ),
            page.chart("Server CPU over the run", cpu),
            page.chart("Server memory (RSS) over the run", rss),
        ]
    )


def _single(page: Page, document: dict[str, Any]) -> str:
    complete = document.get("complete")
    verdict = (
        ""
        if complete is None
        else badge("pass" if complete else "fail", "complete" if complete else "incomplete")
    )
    notes = "".join(f"<li>{esc(n)}</li>" for n in document.get("notes") or [])
    return (
        f"<p>{verdict}</p>"
        + table(_figures(document), {"metric": "Metric", "value": "Value"})
        + (f"<ul>{notes}</ul>" if notes else "")
        + page.chart(
            "Latency percentiles",
            _percentiles(document),
            "Send to receipt, sampled by the probe receivers.",
        )
        + page.chart("Copies", _copies(document))
        + _over_time(page, document)
    )


def _rounds(server: dict[str, Any]) -> list[dict[str, Any]]:
    rounds = server.get("rounds")
    if isinstance(rounds, list):
        return [r for r in rounds if isinstance(r, dict)]
    return [server]


def _name(server: dict[str, Any]) -> str:
    return str(server.get("name") or server.get("server") or server.get("target") or "server")


def _median(values: list[Any]) -> float | None:
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return round(stats.median(numbers), 3) if numbers else None


def _compare(page: Page, servers: list[dict[str, Any]]) -> str:
    names = [_name(s) for s in servers]
    medians = {
        key: [_median([r.get(key) for r in _rounds(s)]) for s in servers] for key, _ in COMPARED
    }
    rows = []
    for key, label in COMPARED:
        values = medians[key]
        if all(v is None for v in values):
            continue
        row: dict[str, Any] = {"metric": label}
        for i, (name, value) in enumerate(zip(names, values, strict=True)):
            spread = [r.get(key) for r in _rounds(servers[i]) if r.get(key) is not None]
            row[name] = value
            row[f"{name} range"] = f"{min(spread):g}-{max(spread):g}" if len(spread) > 1 else None
            first = values[0]
            row[f"{name} ratio"] = round(value / first, 2) if value and first else None
        rows.append(row)
    columns = {"metric": "Metric (median of rounds)"}
    for name in names:
        columns |= {name: name, f"{name} range": "range", f"{name} ratio": f"x {names[0]}"}
    charts = []
    for key, label in COMPARED[:4]:
        config = line_chart(
            names, {label: medians[key]}, y_title=label, x_title="server", kind="bar"
        )
        if config is not None:  # a colour per server, as in the rounds chart below
            config["data"]["datasets"][0]["backgroundColor"] = [
                PALETTE[i % len(PALETTE)] for i in range(len(names))
            ]
            config["options"]["plugins"] = {"legend": {"display": False}}
        charts.append(page.chart(label[0].upper() + label[1:], config))
    each = {
        f"{name}": [r.get("deliveries_per_s") for r in _rounds(s)]
        for name, s in zip(names, servers, strict=True)
    }
    longest = max((len(v) for v in each.values()), default=0)
    rounds = line_chart(
        list(range(1, longest + 1)),
        each,
        y_title="deliveries per second",
        x_title="round",
        kind="bar",
    )
    return (
        "<h2>Side by side</h2>"
        + (table(rows, columns) if rows else nodata("Compared figures"))
        + "".join(charts)
        + page.chart("Deliveries per second, each round", rounds)
    )


def bench_report(document: dict[str, Any]) -> str:
    """The HTML report of one ``netlab bench`` run, or of a side-by-side run (``servers``)."""
    document = document if isinstance(document, dict) else {}
    servers = document.get("servers")
    if isinstance(servers, list) and servers:
        servers = [s for s in servers if isinstance(s, dict)]
        page = Page("netlab bench: " + ", ".join(_name(s) for s in servers))
        body = f"<h1>{esc(page.title)}</h1>" + _compare(page, servers)
        columns = {"round": "Round", **dict(COMPARED)}
        for server in servers:
            rounds = [{"round": n, **r} for n, r in enumerate(_rounds(server), 1)]
            body += f"<h3>{esc(_name(server))}: each round</h3>" + table(rounds, columns)
    else:
        page = Page(f"netlab bench: {document.get('server') or document.get('target') or 'run'}")
        body = f"<h1>{esc(page.title)}</h1>" + _single(page, document)
    return page.render(body, {"kind": "bench", "document": document})
