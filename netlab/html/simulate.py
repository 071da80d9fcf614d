"""The HTML report of ``netlab simulate``: one section per scenario, a summary on top when
there are several. Its input is the ``--report`` JSON document of each run (netlab/report.py
``build``), optionally with a ``timeline`` (netlab/html/timeline.py; docs/reports.md)."""

from __future__ import annotations

from typing import Any

from netlab.html import sockets, timeline
from netlab.html.page import Page, badge, esc, facts, nodata, table
from netlab.report import BOT_COLUMNS

MAX_COPIES = 20_000
"""Copies kept one by one in the page's JSON (see ``_compact``)."""
FOLD_BOTS = 40
"""More bots than this: their table is folded (open it, or print: it opens)."""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _verdict(document: dict[str, Any]) -> str:
    passed = document.get("passed")
    if passed is None:
        return badge("skip", "no verdict")
    return (
        f'<span class="verdict {"pass" if passed else "fail"}">'
        f"{'PASSED' if passed else 'FAILED'}</span>"
    )


def _anchor(index: int, document: dict[str, Any]) -> str:
    return f"scenario-{index + 1}-{esc(document.get('scenario', 'run'))}".replace(" ", "-")


def _server(document: dict[str, Any]) -> str:
    target = document.get("target")
    if document.get("embedded_server"):
        return f"embedded netlab serve on {target}"
    return str(target) if target else "unknown"


def _header(document: dict[str, Any]) -> str:
    totals = _dict(document.get("totals"))
    latency = _dict(totals.get("latency_ms"))
    duration = document.get("duration_s")
    ran = f"{duration:.1f} s" if isinstance(duration, (int, float)) else None
    if ran and document.get("speed") not in (None, 1, 1.0):
        ran += f" at speed {document['speed']:g}"
    if ran and document.get("cut_by_duration"):
        ran += " (stopped by its duration)"
    ratio = totals.get("delivery_ratio")
    copies = (
        f"{totals.get('delivered')} of {totals.get('expected')} delivered"
        + (f" ({ratio * 100:.2f} %)" if isinstance(ratio, (int, float)) else "")
        + f", {totals.get('lost')} lost"
        if totals
        else None
    )
    percent = ", ".join(
        f"{k} {latency[k]:g} ms"
        for k in ("p50", "p95", "p99", "max")
        if isinstance(latency.get(k), (int, float))
    )
    return facts(
        [
            ("server", _server(document)),
            ("protocol", document.get("protocol")),
            ("duration", ran),
            ("seed", document.get("seed")),
            ("bots", totals.get("bots")),
            ("messages sent", totals.get("sent")),
            ("copies", copies),
            ("latency", percent or None),
            ("errors", totals.get("errors")),
        ]
    )


def _expectations(document: dict[str, Any]) -> str:
    rows = [
        {
            "result": badge("pass") if e.get("passed") else badge("fail", "FAIL"),
            "name": e.get("name"),
            "detail": e.get("detail"),
        }
        for e in document.get("expectations") or []
        if isinstance(e, dict)
    ]
    if not rows:
        return "<h3>Expectations</h3>" + nodata("Expectations")
    columns = {"result": "Result", "name": "Expectation", "detail": "Measured"}
    return "<h3>Expectations</h3>" + table(rows, columns, raw=["result"])


def _bots(document: dict[str, Any]) -> str:
    rows = []
    for bot in document.get("bots") or []:
        if not isinstance(bot, dict):
            continue
        latency = _dict(bot.get("latency_ms"))
        errors = bot.get("errors")
        rows.append(
            {
                **{k: bot.get(k) for k in BOT_COLUMNS},
                **latency,
                "errors": len(errors) if isinstance(errors, list) else errors,
            }
        )
    if not rows:
        return "<h3>Bots</h3>" + nodata("Bots")
    said = [
        f"<li><b>{esc(b.get('nick'))}</b>: {esc(text)}</li>"
        for b in document.get("bots") or []
        if isinstance(b, dict)
        for text in (b.get("errors") if isinstance(b.get("errors"), list) else [])
    ]
    errors = f"<h3>Errors</h3><ul>{''.join(said)}</ul>" if said else ""
    grid = table(rows, BOT_COLUMNS, sortable=True)
    if len(rows) > FOLD_BOTS:
        grid = f'<details class="print-open"><summary>All {len(rows)} bots</summary>{grid}'
        grid += "</details>"
    return '<h3>Bots</h3><p class="muted noprint">Click a heading to sort.</p>' + grid + errors


def _over_time(page: Page, document: dict[str, Any]) -> str:
    series, events, lost, messages = timeline.parts(document.get("timeline"))
    end = document.get("duration_s")
    end = end if isinstance(end, (int, float)) else None
    lanes, extra = timeline.swimlane(events, messages, lost, end)
    note = extra.pop("note", "")
    source = _dict(document.get("timeline")).get("source")
    said = (
        '<p class="muted">Read back from the run\'s transcript: times to the millisecond.</p>'
        if source == "transcript"
        else ""
    )
    return said + "".join(
        [
            page.chart(
                "Messages and copies per second",
                timeline.rates(series, end),
                "Messages the bots sent and copies the server delivered, per second;"
                " crosses mark copies lost, stars errors.",
            ),
            page.chart(
                "Latency per second",
                timeline.latency(series, end),
                "Percentiles of the copies delivered in each second, send to receipt.",
            ),
            page.chart(
                "Bots connected",
                timeline.connected(events, series, end),
                "Hover a mark: who joined, left, was kicked, refused or dropped.",
            ),
            page.chart(
                "Who said what, when, and who got it",
                lanes,
                "A lane per bot, shaded while it is online; each dot is a message on"
                " its sender's lane. Hover one: the lines fan out to every copy"
                " (dashed red: lost)." + (f" ({note})" if note else ""),
                tall=len(extra.get("lanes", [])) > 4,
                **extra,
            ),
        ]
    )


def _section(page: Page, index: int, document: dict[str, Any], heading: str) -> str:
    name = document.get("scenario") or "run"
    return (
        f'<section class="report" id="{_anchor(index, document)}">'
        f"<{heading}>{esc(name)} {_verdict(document)}</{heading}>"
        f"{_header(document)}{_expectations(document)}{_over_time(page, document)}"
        f"<h3>The sockets</h3>{sockets.section(page, document.get('sockets'))}"
        f"{_bots(document)}</section>"
    )


def _summary(documents: list[dict[str, Any]]) -> str:
    rows = []
    for index, document in enumerate(documents):
        totals = _dict(document.get("totals"))
        rows.append(
            {
                "name": f'<a href="#{_anchor(index, document)}">'
                f"{esc(document.get('scenario'))}</a>",
                "verdict": _verdict(document),
                "bots": totals.get("bots"),
                "sent": totals.get("sent"),
                "delivered": totals.get("delivered"),
                "lost": totals.get("lost"),
                "p99": _dict(totals.get("latency_ms")).get("p99"),
                "duration": document.get("duration_s"),
            }
        )
    passed = sum(1 for d in documents if d.get("passed"))
    columns = {
        "name": "Scenario",
        "verdict": "Verdict",
        "bots": "Bots",
        "sent": "Sent",
        "delivered": "Delivered",
        "lost": "Lost",
        "p99": "p99 ms",
        "duration": "Seconds",
    }
    return f'<h2 class="first">{passed} of {len(documents)} scenarios passed</h2>' + table(
        rows, columns, raw=["name", "verdict"]
    )


def simulate_report(documents: list[dict[str, Any]] | dict[str, Any]) -> str:
    """The HTML report of one simulate run (``documents``: one report document, or one per
    scenario of a directory run)."""
    if isinstance(documents, dict):
        documents = [documents]
    documents = [d for d in documents if isinstance(d, dict)]
    names = ", ".join(str(d.get("scenario") or "run") for d in documents) or "no scenario"
    page = Page(f"netlab simulate: {names}")
    intro = '<p class="meta">netlab simulate report</p>'
    if len(documents) == 1:
        body = intro + _section(page, 0, documents[0], "h1")
    elif documents:
        body = (
            f"<h1>netlab simulate: {len(documents)} scenarios</h1>{intro}{_summary(documents)}"
            + "".join(_section(page, i, d, "h2") for i, d in enumerate(documents))
        )
    else:
        body = "<h1>netlab simulate</h1>" + nodata("Scenarios")
    return page.render(body, {"kind": "simulate", "documents": [_compact(d) for d in documents]})


def _compact(document: dict[str, Any]) -> dict[str, Any]:
    """The document as the page keeps it: a crowd's every copy (300 bots: 600,000) would make
    the file tens of MB, so above ``MAX_COPIES`` the messages keep their ``delivered`` count
    and drop ``recipients`` (``recipients_kept`` false, as the run itself does for a crowd)."""
    tl = _dict(document.get("timeline"))
    messages = [m for m in tl.get("messages") or [] if isinstance(m, dict)]
    if sum(len(m.get("recipients") or []) for m in messages) <= MAX_COPIES:
        return document
    shrunk = [{k: v for k, v in m.items() if k != "recipients"} for m in messages]
    return {**document, "timeline": {**tl, "messages": shrunk, "recipients_kept": False}}
