"""The report of ``netlab check``: a table (through netlab/tables.py), the JSON document (the
plain data an HTML report is drawn from), or JUnit XML; and progress on stderr while it runs."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

from netlab import tables
from netlab.check.model import OUTCOMES, Case, Outcome, Result, summary

if TYPE_CHECKING:
    from netlab.check.runner import Submission

OBSERVED_WIDTH = 90


def document(target: str, submissions: list[Submission], each: bool) -> dict[str, Any]:
    """The JSON document: one run's cases and summary, or with ``--each`` one per file."""
    if each:
        return {
            "target": target,
            "protocol": submissions[0].protocol if submissions else None,
            "submissions": [
                {
                    "file": s.file,
                    "protocol": s.protocol,
                    "cases": [r.to_dict() for r in s.results],
                    "summary": summary(s.results),
                }
                for s in submissions
            ],
        }
    (only,) = submissions
    return {
        "target": target,
        "protocol": only.protocol,
        "cases": [r.to_dict() for r in only.results],
        "summary": summary(only.results),
    }


def render(target: str, submissions: list[Submission], fmt: str, each: bool) -> str:
    if fmt == "json":
        return json.dumps(document(target, submissions, each), indent=2, ensure_ascii=False)
    if fmt == "junit":
        return junit(submissions)
    if each:
        return each_table(submissions)
    return table(target, submissions[0])


def _short(text: str, width: int = OBSERVED_WIDTH) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def summary_line(results: list[Result]) -> str:
    counts = summary(results)
    return f"{len(results)} cases: " + ", ".join(f"{counts[o]} {o}" for o in OUTCOMES)


def table(target: str, submission: Submission) -> str:
    results = submission.results
    rows = [
        {
            "id": r.id,
            "outcome": r.outcome.value,
            "time": round(r.duration_s, 2),
            "observed": _short(r.observed),
        }
        for r in results
    ]
    headers = {"id": "Case", "outcome": "Outcome", "time": "Seconds", "observed": "Observed"}
    out = [
        f"netlab check: {target} ({submission.protocol} protocol)",
        "",
        tables.render(rows, headers, wrap={"observed"}),
    ]
    notes = [r for r in results if r.outcome in (Outcome.FAIL, Outcome.WARN, Outcome.ERROR)]
    if notes:
        out.append("")
    for r in notes:
        out.append(f"{r.outcome.value.upper()} {r.id}")
        out.append(f"  expected: {r.expected}")
        out.append(f"  observed: {r.observed}")
        if r.lesson:
            out.append(f"  lesson:   {r.lesson}")
    out += ["", summary_line(results)]
    return "\n".join(out)


def each_table(submissions: list[Submission]) -> str:
    ids = [r.id for r in submissions[0].results] if submissions else []
    headers = {"file": "File", **{i: i for i in ids}}
    rows = [{"file": s.file, **{r.id: r.outcome.value for r in s.results}} for s in submissions]
    per_case = [
        {
            "id": i,
            **{
                o: sum(
                    1 for s in submissions for r in s.results if r.id == i and r.outcome.value == o
                )
                for o in OUTCOMES
            },
        }
        for i in ids
    ]
    case_headers = {"id": "Case", **{o: o.capitalize() for o in OUTCOMES}}
    return "\n".join(
        [
            tables.render(rows, headers, wrap={"file"}),  # a path; case ids never wrap
            "",
            tables.render(per_case, case_headers),
            "",
            f"{len(submissions)} submissions, "
            + summary_line([r for s in submissions for r in s.results]),
        ]
    )


def junit(submissions: list[Submission]) -> str:
    suites = ET.Element("testsuites", name="netlab check")
    for s in submissions:
        counts = summary(s.results)
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=s.file or "netlab check",
            tests=str(len(s.results)),
            failures=str(counts["fail"]),
            errors=str(counts["error"]),
            skipped=str(counts["skip"]),
            time=f"{sum(r.duration_s for r in s.results):.3f}",
        )
        for r in s.results:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"netlab.check.{r.section}",
                name=r.id,
                time=f"{r.duration_s:.3f}",
            )
            detail = f"expected: {r.expected}\nobserved: {r.observed}"
            if r.lesson:
                detail += f"\nlesson: {r.lesson}"
            if r.outcome is Outcome.FAIL:
                ET.SubElement(case, "failure", message=r.observed).text = detail
            elif r.outcome is Outcome.ERROR:
                ET.SubElement(case, "error", message=r.observed).text = detail
            elif r.outcome is Outcome.SKIP:
                ET.SubElement(case, "skipped", message=r.observed)
            elif r.outcome is Outcome.WARN:
                ET.SubElement(case, "system-out").text = "warn: " + detail
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode")


def case_list(cases: list[Case], fmt: str) -> str:
    rows = [
        {
            "id": c.id,
            "section": c.section,
            "checks": c.checks,
            "needs": ", ".join(n.value for n in c.needs) or None,
        }
        for c in cases
    ]
    if fmt == "json":
        return json.dumps(rows, indent=2)
    return tables.render(
        rows,
        {"id": "Case", "section": "Section", "checks": "Checks", "needs": "Needs"},
        wrap={"checks", "needs"},
    )


class Progress:
    """A rich progress bar on stderr while cases run, when stderr is a terminal."""

    def __init__(self, total: int, what: str, enabled: bool | None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.total, self.what = total, what
        self._bar: Any = None

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
            from rich.progress import Progress as Bar

            self._bar = Bar(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(f"checking {self.what}", total=self.total)
        return self

    def advance(self, result: Result) -> None:
        if self._bar is not None:
            self._bar.update(
                self._task, advance=1, description=f"{result.id}: {result.outcome.value}"
            )

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
