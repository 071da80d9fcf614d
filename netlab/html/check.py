"""The HTML report of ``netlab check``: the matrix of cases and outcomes (with ``--each``,
submissions by cases), each case opening to expected vs observed, the lesson and the wire log.

Its input is the ``--format json`` document (issue 13): ``{"target", "protocol", "cases":
[{"id", "section", "outcome", "expected", "observed", "lesson", "duration_s", "log"}],
"summary": {"pass", "fail", "warn", "skip", "error"}}``, or with ``--each``
``{"submissions": [{"file", "cases", "summary"}]}``. A log entry is ``{"t", "peer", "event",
"bytes", "data"}`` (netlab/check/wire.py); any other entry is shown as it is.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from netlab.html.page import COLORS, Page, badge, esc, facts, nodata, table

OUTCOMES = ("pass", "fail", "warn", "skip", "error")
LETTER = {"pass": "P", "fail": "F", "warn": "W", "skip": "S", "error": "E"}
LOG_COLUMNS = {"t": "s", "peer": "Peer", "event": "Event", "bytes": "Bytes", "data": "Data"}


def _cases(value: Any) -> list[dict[str, Any]]:
    return [c for c in value if isinstance(c, dict)] if isinstance(value, list) else []


def _outcome(case: dict[str, Any]) -> str:
    outcome = str(case.get("outcome"))
    return outcome if outcome in OUTCOMES else "error"


def _counts(cases: list[dict[str, Any]]) -> dict[str, int]:
    found = Counter(_outcome(c) for c in cases)
    return {o: found.get(o, 0) for o in OUTCOMES}


def _tally(counts: dict[str, int]) -> str:
    return " ".join(badge(o, f"{n} {o}") for o, n in counts.items() if n)


def _slug(*parts: Any) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join(str(p) for p in parts)).strip("-")


def _log(entries: Any) -> str:
    if not isinstance(entries, list) or not entries:
        return '<p class="muted">No wire log.</p>'
    rows = [e if isinstance(e, dict) else {"event": "note", "data": str(e)} for e in entries]
    return f'<div class="log">{table(rows, LOG_COLUMNS, css="mono log")}</div>'


def _lesson(text: Any) -> str:
    if not text:
        return ""
    # A pointer such as docs/check.md#leaveclose-wait stays readable text: the report must
    # not link out of the file.
    return f"<dt>Lesson</dt><dd>{esc(text)}</dd>"


def _case(case: dict[str, Any], anchor: str, with_log: bool = True) -> str:
    outcome = _outcome(case)
    duration = case.get("duration_s")
    took = f" ({duration:.2f} s)" if isinstance(duration, (int, float)) else ""
    opened = " open" if outcome in ("fail", "error") else ""
    printed = " print-open" if outcome != "pass" else ""
    body = (
        f'<dl class="facts"><dt>Expected</dt><dd>{esc(case.get("expected"))}</dd>'
        f"<dt>Observed</dt><dd>{esc(case.get('observed'))}</dd>{_lesson(case.get('lesson'))}"
        "</dl>"
    )
    if with_log:
        body += "<h4>Wire log</h4>" + _log(case.get("log"))
    return (
        f'<details id="{anchor}" class="case{printed}"{opened}><summary>{badge(outcome)} '
        f"<b>{esc(case.get('id'))}</b>{esc(took)}: {esc(case.get('observed'))}</summary>"
        f"{body}</details>"
    )


def _sections_chart(page: Page, cases: list[dict[str, Any]]) -> str:
    sections = list(dict.fromkeys(str(c.get("section") or "?") for c in cases))
    config = {
        "type": "bar",
        "data": {
            "labels": sections,
            "datasets": [
                {
                    "label": outcome,
                    "data": [
                        sum(1 for c in cases if c.get("section") == s and _outcome(c) == outcome)
                        for s in sections
                    ],
                    "backgroundColor": COLORS[outcome],
                }
                for outcome in OUTCOMES
            ],
        },
        "options": {
            "indexAxis": "y",
            "scales": {
                "x": {"stacked": True, "title": {"display": True, "text": "cases"}},
                "y": {"stacked": True},
            },
        },
    }
    return page.chart("Outcomes by section", config if cases else None)


def _one(page: Page, document: dict[str, Any]) -> str:
    cases = _cases(document.get("cases"))
    counts = _counts(cases)
    rows = [
        {
            "id": f'<a href="#{_slug("case", c.get("id"))}">{esc(c.get("id"))}</a>',
            "section": c.get("section"),
            "outcome": badge(_outcome(c)),
            "duration_s": c.get("duration_s"),
            "observed": c.get("observed"),
        }
        for c in cases
    ]
    columns = {
        "id": "Case",
        "section": "Section",
        "outcome": "Outcome",
        "duration_s": "Seconds",
        "observed": "Observed",
    }
    details = "".join(_case(c, _slug("case", c.get("id"))) for c in cases)
    return (
        facts(
            [
                ("target", document.get("target")),
                ("protocol", document.get("protocol")),
                ("cases", len(cases)),
            ]
        )
        + f"<p>{_tally(counts)}</p>"
        + _sections_chart(page, cases)
        + "<h2>Cases</h2>"
        + (table(rows, columns, raw=["id", "outcome"], sortable=True) if rows else nodata("Cases"))
        + '<h2>Each case</h2><p class="muted noprint">Open a case for what was expected, what'
        " was observed, the lesson and the wire log.</p>" + details
    )


def _each(page: Page, document: dict[str, Any], submissions: list[dict[str, Any]]) -> str:
    ids = list(dict.fromkeys(str(c.get("id")) for s in submissions for c in _cases(s.get("cases"))))
    head = "".join(f'<th class="vertical">{esc(i)}</th>' for i in ids)
    rows = []
    for n, sub in enumerate(submissions):
        found = {str(c.get("id")): c for c in _cases(sub.get("cases"))}
        cells = []
        for case_id in ids:
            case = found.get(case_id)
            if case is None:
                cells.append('<td class="cell">-</td>')
                continue
            outcome = _outcome(case)
            anchor = _slug("sub", n, case_id)
            cells.append(
                f'<td class="cell {outcome}" title="{esc(case_id)}: {esc(outcome)}">'
                f'<a href="#{anchor}">{LETTER[outcome]}</a></td>'
            )
        tally = _tally(_counts(list(found.values())))
        rows.append(
            f'<tr><th><a href="#{_slug("sub", n)}">{esc(sub.get("file"))}</a></th>'
            f"{''.join(cells)}<td>{tally}</td></tr>"
        )
    per_case = []
    for case_id in ids:
        got = Counter(
            _outcome(c)
            for s in submissions
            for c in _cases(s.get("cases"))
            if str(c.get("id")) == case_id
        )
        per_case.append({"id": case_id, **{o: got.get(o, 0) for o in OUTCOMES}})
    matrix = (
        f'<table class="matrix"><thead><tr><th>Submission</th>{head}<th>Summary</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    config = {
        "type": "bar",
        "data": {
            "labels": ids,
            "datasets": [
                {"label": o, "data": [r[o] for r in per_case], "backgroundColor": COLORS[o]}
                for o in OUTCOMES
            ],
        },
        "options": {
            "scales": {
                "x": {"stacked": True},
                "y": {"stacked": True, "title": {"display": True, "text": "submissions"}},
            }
        },
    }
    parts = [
        facts(
            [
                ("command", document.get("target")),
                ("protocol", document.get("protocol")),
                ("submissions", len(submissions)),
                ("cases", len(ids)),
            ]
        ),
        "<h2>Submissions by cases</h2>",
        matrix if submissions else nodata("Submissions"),
        '<p class="muted">P pass, F fail, W warn, S skip, E error; click a cell for the case.</p>',
        page.chart("Outcomes per case", config if ids else None),
        "<h2>Summary per case</h2>",
        table(per_case, {"id": "Case", **{o: o for o in OUTCOMES}}, sortable=True),
    ]
    for n, sub in enumerate(submissions):
        cases = _cases(sub.get("cases"))
        parts.append(
            f'<h2 id="{_slug("sub", n)}">{esc(sub.get("file"))}</h2><p>{_tally(_counts(cases))}</p>'
        )
        # Only what went wrong carries its wire log: thirty servers' logs of passing cases
        # would make a file too big to mail.
        parts += [_case(c, _slug("sub", n, c.get("id")), _outcome(c) != "pass") for c in cases]
    return "".join(parts)


def check_report(document: dict[str, Any]) -> str:
    """The HTML report of one ``netlab check`` run (its JSON document)."""
    document = document if isinstance(document, dict) else {}
    submissions = document.get("submissions")
    if isinstance(submissions, list):
        subs = [s for s in submissions if isinstance(s, dict)]
        failed = sum(1 for s in subs if _counts(_cases(s.get("cases")))["fail"])
        title = f"netlab check: {len(subs)} submissions"
        verdict = f"{len(subs) - failed} of {len(subs)} without a failed case"
        page = Page(title)
        body = f'<h1>{esc(title)}</h1><p class="meta">{esc(verdict)}</p>' + _each(
            page, document, subs
        )
    else:
        counts = _counts(_cases(document.get("cases")))
        title = f"netlab check: {document.get('target') or 'a program'}"
        page = Page(title)
        ok = not counts["fail"]
        verdict = (
            f'<span class="verdict {"pass" if ok else "fail"}">'
            f"{'PASSED' if ok else 'FAILED'}</span>"
        )
        body = f"<h1>{esc(title)} {verdict}</h1>" + _one(page, document)
    return page.render(body, {"kind": "check", "document": document})
