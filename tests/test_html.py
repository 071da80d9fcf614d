"""The HTML reports (netlab/html) as a person looks at them: built from real runs' documents,
opened in a real headless Chromium, with no console error, no network request, and every chart
drawn. Without a browser (Debian's ``chromium``) or Playwright the browser tests skip.

Run as a script it regenerates the README's picture from a real demo run::

    python tests/test_html.py docs/img/demo-report.png
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers import HANDOUT, NETLAB, ROOT

from netlab import html

MAX_BYTES = 5 * 1024 * 1024  # the cap for the shipped scenarios
TINY = """\
name: tiny
seed: 1
server:
  protocol: netlab
  options: {admin_password: pw}
bots:
  - nick: alice
    script:
      - {at: 0s, do: join}
      - {at: 0.3s, do: say, text: "hi </script><script>alert(1)</script> 👋"}
      - {at: 0.6s, do: login, password: pw}
      - {at: 0.8s, do: kick, nick: carol, reason: spam}
      - {at: 1.4s, do: say, text: "bye"}
  - nick: bob
    script:
      - {at: 0.1s, do: join}
      - {at: 0.5s, do: say, text: "Привет"}
      - {at: 1.2s, do: drop}
  - nick: carol
    script:
      - {at: 0.2s, do: join}
      - {at: 0.4s, do: say, text: "你好"}
expect: {delivery: 100%, kicked: [carol]}
observe: {sockets: [0.7s]}
"""


# ---- the browser -------------------------------------------------------------------------


def chromium() -> str | None:
    """The browser: $NETLAB_CHROMIUM, else Debian's chromium on the PATH."""
    found = os.environ.get("NETLAB_CHROMIUM") or shutil.which("chromium")
    return found or shutil.which("chromium-browser")


def look(
    page_file: Path, screenshot: Path | None = None, width: int = 1200, pdf: Path | None = None
) -> dict[str, Any]:
    """Open ``page_file`` as a person would and say what happened: console errors, requests
    beyond the file itself (each refused), for each chart its points and painted pixels, and
    with ``pdf`` the page printed (which folded parts opened for print)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    executable = chromium()
    if executable is None:
        pytest.skip("no Chromium installed (Debian: apt-get install chromium)")
    url = page_file.resolve().as_uri()
    seen: dict[str, list[str]] = {"errors": [], "requests": []}
    args = ["--no-sandbox"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=args)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.on("console", lambda m: m.type == "error" and seen["errors"].append(m.text))
            page.on("pageerror", lambda e: seen["errors"].append(str(e)))

            def route(request_route: Any) -> None:
                if request_route.request.url == url:
                    request_route.continue_()
                else:
                    seen["requests"].append(request_route.request.url)
                    request_route.abort()

            page.route("**/*", route)
            page.goto(url, wait_until="load")
            drawn = page.evaluate(DRAWN)
            canvases = page.evaluate("document.querySelectorAll('canvas').length")
            if screenshot is not None:
                page.screenshot(path=str(screenshot), full_page=True)
            sorted_nicks = _sort_by_sent(page)
            printed = None
            if pdf is not None:
                page.emulate_media(media="print")
                page.evaluate("window.dispatchEvent(new Event('beforeprint'))")
                printed = page.evaluate(
                    "Array.from(document.querySelectorAll('details.print-open'), d => d.open)"
                )
                page.pdf(path=str(pdf), format="A4")
        finally:
            browser.close()
    return {
        **seen,
        "charts": drawn,
        "canvases": canvases,
        "sorted": sorted_nicks,
        "printed": printed,
    }


DRAWN = """() => (window.netlabCharts || []).map(chart => {
  const { width, height } = chart.canvas;
  const pixels = chart.canvas.getContext("2d").getImageData(0, 0, width, height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) painted++;
  const points = chart.data.datasets.reduce((n, d) => n + d.data.filter(
    v => v !== null && !(typeof v === "object" && v.y === null)).length, 0);
  return { id: chart.canvas.id, title: chart.canvas.getAttribute("aria-label"), points,
           painted, area: width * height };
})"""


def _sort_by_sent(page: Any) -> list[list[str]] | None:
    """Click the bots table's Sent heading twice: the nicks in each order (None: no table)."""
    # The first table shown open (a crowd's is folded).
    heading = page.locator("table.sortable th:visible", has_text=re.compile(r"^Sent$"))
    if heading.count() == 0:
        return None
    orders = []
    for _ in range(2):
        heading.first.click()
        orders.append(page.locator("table.sortable tbody tr td:first-child").all_inner_texts())
    return orders


def assert_looks_right(seen: dict[str, Any], charts: int) -> None:
    assert seen["errors"] == [], seen["errors"]
    assert seen["requests"] == [], seen["requests"]
    assert seen["canvases"] == len(seen["charts"]) >= charts, seen["charts"]
    for chart in seen["charts"]:
        assert chart["points"] > 0, chart
        # Axes alone paint a little; data paints more than 1 % of the canvas.
        assert chart["painted"] > chart["area"] // 100, chart


# ---- real runs ---------------------------------------------------------------------------


def run_netlab(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [*NETLAB, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def simulate_document(scenario: Path, out: Path, *options: str) -> dict[str, Any]:
    """``netlab simulate`` run for real; its report with the timeline from its transcript."""
    report, transcript = out / f"{scenario.stem}.json", out / f"{scenario.stem}.txt"
    done = run_netlab(
        "simulate",
        str(scenario),
        "--report",
        str(report),
        "--transcript",
        str(transcript),
        "--quiet",
        *options,
    )
    assert done.returncode in (0, 1), done.stdout + done.stderr
    return html.with_transcript(json.loads(report.read_text(encoding="utf-8")), transcript)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("tiny")
    scenario = out / "tiny.yaml"
    scenario.write_text(TINY, encoding="utf-8")
    return simulate_document(scenario, out)


# What the handout's server gets (issue 13, "What it must get right"): a realistic document
# until `netlab check` is on main; its shape is the contract.
HANDOUT_OUTCOMES = {
    "connect.prompt": "pass",
    "connect.join": "pass",
    "chat.broadcast": "pass",
    "chat.no-echo": "pass",
    "chat.utf8": "pass",
    "chat.burst": "warn",
    "leave.abrupt": "pass",
    "leave.reset-burst": "fail",
    "leave.close-wait": "fail",
    "leave.idle-cpu": "fail",
    "nick.reserved": "pass",
    "nick.duplicate": "fail",
    "limit.refusal": "fail",
    "limit.busy-loop": "fail",
    "slow.reader": "fail",
    "security.impersonation": "fail",
    "admin.kick": "skip",
}


def check_case(case_id: str, outcome: str) -> dict[str, Any]:
    wrong = outcome in ("fail", "warn")
    log = [
        {"t": 0.0, "peer": "a", "event": "connect", "data": "41022 -> 5555"},
        {"t": 0.0012, "peer": "a", "event": "recv", "bytes": 4, "data": "NICK"},
        {"t": 0.0015, "peer": "a", "event": "send", "bytes": 5, "data": "alice"},
        {
            "t": 0.104,
            "peer": "b",
            "event": "recv",
            "bytes": 31,
            "data": "[2026-12-01 10:00:00] alice: <b>hi</b> </script>",
        },
        {"t": 0.2, "peer": "b", "event": "RST"},
    ]
    return {
        "id": case_id,
        "section": case_id.split(".")[0],
        "outcome": outcome,
        "expected": f"what {case_id} expects",
        "observed": "no line came within 2 s" if wrong else "as expected",
        "lesson": "one recv is not one message (docs/check.md#chatburst)" if wrong else None,
        "duration_s": 0.42,
        "log": log,
    }


def check_document(outcomes: dict[str, str], target: str = "127.0.0.1:5555") -> dict[str, Any]:
    cases = [check_case(i, o) for i, o in outcomes.items()]
    summary = {o: sum(1 for c in cases if c["outcome"] == o) for o in html.check.OUTCOMES}
    return {"target": target, "protocol": "handout", "cases": cases, "summary": summary}


def bench_document() -> dict[str, Any]:
    done = run_netlab(
        "bench",
        "--clients",
        "12",
        "--senders",
        "3",
        "--messages",
        "40",
        "--format",
        "json",
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


# ---- the tests ---------------------------------------------------------------------------


def test_simulate_report_of_a_real_run_in_a_browser(tiny, tmp_path):
    page_file = tmp_path / "tiny.html"
    html.write(page_file, html.simulate_report([tiny]))
    seen = look(page_file, tmp_path / "tiny.png")
    # rates, latency, connected, swimlane, sockets per state
    assert_looks_right(seen, charts=5)
    titles = [c["title"] for c in seen["charts"]]
    assert "Who said what, when, and who got it" in titles
    assert "Sockets per TCP state" in titles
    ascending, descending = seen["sorted"]
    assert ascending[-1] == "alice" and descending[0] == "alice"  # she sent 2, the others 1
    assert (tmp_path / "tiny.png").stat().st_size > 10_000


def test_the_timeline_from_a_transcript_counts_as_the_report_does(tiny):
    timeline = tiny["timeline"]
    series, totals = timeline["seconds"], tiny["totals"]
    assert sum(r["sent"] for r in series) == totals["sent"] == 4
    assert sum(r["delivered"] for r in series) == totals["delivered"] == 6
    kinds = {(e["bot"], e["kind"]) for e in timeline["events"]}
    assert {("carol", "kick"), ("bob", "drop"), ("alice", "join")} <= kinds
    first = timeline["messages"][0]
    assert first["sender"] == "alice" and first["delivered"] == 2
    assert sorted(r["bot"] for r in first["recipients"]) == ["bob", "carol"]


def test_chat_text_cannot_break_out_of_the_page(tiny):
    page = html.simulate_report([tiny])
    assert "<script>alert(1)" not in page
    assert page.count("<script") == 4  # the data, the charts, Chart.js, the page script
    assert not re.search(r"<script[^>]*\ssrc=|<link|@import|url\(", page)


def test_check_report_in_a_browser(tmp_path):
    single = tmp_path / "check.html"
    html.write(single, html.check_report(check_document(HANDOUT_OUTCOMES)))
    seen = look(single, pdf=tmp_path / "check.pdf")
    assert_looks_right(seen, charts=1)
    # Printed, every case that did not pass opens (a passing one stays a line).
    wrong = [o for o in HANDOUT_OUTCOMES.values() if o != "pass"]
    assert seen["printed"] == [True] * len(wrong)
    assert (tmp_path / "check.pdf").read_bytes().startswith(b"%PDF")
    text = single.read_text(encoding="utf-8")
    assert text.count('<details id="case-') == len(HANDOUT_OUTCOMES)
    assert "FAILED" in text and "one recv is not one message" in text
    assert "&lt;b&gt;hi&lt;/b&gt;" in text  # the wire log is shown as text
    fixed = {**HANDOUT_OUTCOMES, **dict.fromkeys(HANDOUT_OUTCOMES, "pass")}
    each = {
        "submissions": [
            {"file": "students/ann/server.py", **check_document(HANDOUT_OUTCOMES)},
            {"file": "students/ben/server.py", **check_document(fixed)},
        ]
    }
    many = tmp_path / "each.html"
    html.write(many, html.check_report(each))
    assert_looks_right(look(many), charts=1)
    text = many.read_text(encoding="utf-8")
    assert "1 of 2 without a failed case" in text
    assert text.count('class="cell fail"') == list(HANDOUT_OUTCOMES.values()).count("fail")


def test_bench_report_of_a_real_run_in_a_browser(tmp_path):
    document = bench_document()
    page_file = tmp_path / "bench.html"
    html.write(page_file, html.bench_report(document))
    seen = look(page_file)
    assert_looks_right(seen, charts=2)  # latency percentiles, copies
    text = page_file.read_text(encoding="utf-8")
    assert "deliveries per second" in text and "no data in this report" in text  # no timeline
    rounds = [{**document, "deliveries_per_s": rate} for rate in (100, 300, 200)]
    compared = {
        "servers": [{"name": "netlab", "rounds": rounds}, {"name": "ncat", "rounds": rounds[:2]}]
    }
    page_file = tmp_path / "compare.html"
    html.write(page_file, html.bench_report(compared))
    assert_looks_right(look(page_file), charts=4)
    assert "x netlab" in page_file.read_text(encoding="utf-8")  # ratios to the first


def test_bench_timeline_is_drawn_when_the_document_has_one(tmp_path):
    document = {
        "target": "127.0.0.1:1",
        "latency_ms_p50": 1.0,
        "timeline": [
            {
                "t": t,
                "deliveries_per_s": 1000 * t,
                "p50": 1,
                "p95": 2,
                "p99": 3,
                "server_cpu_pct": 50,
                "server_rss_mb": 40 + t,
            }
            for t in range(5)
        ],
    }
    page_file = tmp_path / "bench.html"
    html.write(page_file, html.bench_report(document))
    seen = look(page_file)
    assert_looks_right(seen, charts=5)
    assert "Server memory (RSS) over the run" in [c["title"] for c in seen["charts"]]


TRANSCRIPT = """\
     0.001 alice * registered
     0.101 bob * registered
     0.201 carol * registered
     1.000 alice > first
     1.001 carol < [2026-12-01 10:00:00] alice: first
     4.500 alice > second
     4.501 carol < [2026-12-01 10:00:03] alice: second
     5.000 bob * connection closed
     6.000 carol ! expect timed out
"""


def test_a_transcript_counts_lost_copies_by_the_ledgers_rule():
    document = {"bots": [{"nick": "bob", "outcome": "dropped"}]}
    timeline = html.transcript.timeline(TRANSCRIPT.splitlines(), document)
    series = {row["t"]: row for row in timeline["seconds"]}
    # bob never got "first" (sent 4 s before he went: lost) nor "second" (0.5 s: in flight).
    assert timeline["lost"] == [{"t": 5.0, "bot": "bob", "copies": 1}]
    assert series[5]["lost"] == 1 and sum(r["lost"] for r in series.values()) == 1
    assert series[6]["errors"] == 1
    assert series[1]["delivered"] == 1 and series[1]["latency_ms"]["p50"] == 1.0  # ms
    assert ("bob", "drop") in {(e["bot"], e["kind"]) for e in timeline["events"]}
    assert series[5]["connected"] == 2


def test_a_crowd_folds_into_a_lane_per_group():
    events = [{"t": i / 10, "bot": f"guest{i}", "kind": "join"} for i in range(1, 51)]
    events.append({"t": 1.0, "bot": "teacher", "kind": "join"})
    messages = [
        {
            "t": 2.0,
            "sender": "teacher",
            "text": "hi",
            "delivered": 50,
            "recipients": [{"bot": f"guest{i}", "latency_ms": i} for i in range(1, 51)],
        }
    ]
    config, extra = html.timeline.swimlane(events, messages)
    assert extra["lanes"] == ["guest (50 bots)", "teacher"]
    (message,) = config["data"]["datasets"][0]["data"]
    assert message["fan"] == [[2.001, 0, 0]]  # one line to the folded lane, its first copy
    assert "delivered to 50, in 1.0-50.0 ms" in message["label"]


@pytest.mark.parametrize(
    "build, document",
    [
        (html.simulate_report, []),
        (html.simulate_report, [{}]),
        (
            html.simulate_report,
            [{"scenario": "x", "timeline": {"seconds": "junk", "lost": [1]}, "bots": [1]}],
        ),
        (html.check_report, {}),
        (html.check_report, {"cases": [{"id": "a.b", "outcome": "odd", "log": ["raw"]}]}),
        (html.check_report, {"submissions": [{"file": "f", "cases": None}]}),
        (html.bench_report, {}),
        (html.bench_report, {"servers": [{"name": "x", "rounds": [{}]}]}),
    ],
)
def test_missing_keys_say_no_data_instead_of_failing(build, document):
    page = build(document)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_shipped_scenarios_make_reports_under_5_mb(tmp_path):
    documents = [
        simulate_document(scenario, tmp_path, "--speed", "2")
        for scenario in sorted((ROOT / "scenarios").glob("*.yaml"))
    ]
    for document in documents:
        size = len(html.simulate_report([document]).encode())
        assert size < MAX_BYTES, (document["scenario"], size)
    page_file = tmp_path / "all.html"
    html.write(page_file, html.simulate_report(documents))
    assert page_file.stat().st_size < MAX_BYTES
    # Four charts over time each, and one of the socket states where the scenario observes.
    charts = sum(4 + bool(document.get("sockets")) for document in documents)
    assert_looks_right(look(page_file), charts=charts)


def with_html_option(*args: str) -> subprocess.CompletedProcess:
    """``netlab ARGS``, skipping the test while the command has no ``--html`` yet."""
    done = run_netlab(*args)
    if done.returncode == 2 and "--html" in done.stderr and "No such option" in done.stderr:
        pytest.skip(f"netlab {args[0]} has no --html option yet")
    return done


def test_simulate_html_option_makes_one_file_for_a_directory(tmp_path):
    for name in ("one", "two"):
        (tmp_path / f"{name}.yaml").write_text(TINY.replace("tiny", name), encoding="utf-8")
    page_file = tmp_path / "all.html"
    done = with_html_option("simulate", str(tmp_path), "--quiet", "--html", str(page_file))
    assert done.returncode == 0, done.stdout + done.stderr
    text = page_file.read_text(encoding="utf-8")
    assert text.count('<section class="report"') == 2 and "2 of 2 scenarios passed" in text
    assert not list(tmp_path.glob("all-*.html"))  # one file, not one per scenario
    # The sockets chart of each at least; the four over time once the report has a timeline.
    assert_looks_right(look(page_file), charts=2)


def test_check_html_option(tmp_path):
    page_file = tmp_path / "check.html"
    server = HANDOUT / "server.py"
    if not server.exists():
        pytest.skip("the handout's server.py is not here")
    done = with_html_option(
        "check",
        "--cases",
        "chat.broadcast",
        "--html",
        str(page_file),
        "--",
        sys.executable,
        str(server),
        "{host}",
        "{port}",
    )
    if done.returncode == 2 and "No such command" in done.stderr:
        pytest.skip("netlab check is not here yet")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "chat.broadcast" in page_file.read_text(encoding="utf-8")


def test_bench_html_option(tmp_path):
    page_file = tmp_path / "bench.html"
    done = with_html_option(
        "bench", "--clients", "6", "--senders", "2", "--messages", "10", "--html", str(page_file)
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "deliveries per second" in page_file.read_text(encoding="utf-8")


def demo_screenshot(path: Path, work: Path) -> dict[str, Any]:
    """The README's picture: the demo run for real, its report, a screenshot of it."""
    document = simulate_document(ROOT / "scenarios" / "demo.yaml", work)
    page_file = work / "demo.html"
    html.write(page_file, html.simulate_report([document]))
    return look(page_file, path)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_the_demo_report(tmp_path):
    seen = demo_screenshot(tmp_path / "demo.png", tmp_path)
    assert_looks_right(seen, charts=5)


if __name__ == "__main__":
    import tempfile

    target = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "docs" / "img" / "demo-report.png")
    with tempfile.TemporaryDirectory() as work:
        assert_looks_right(demo_screenshot(target, Path(work)), charts=5)
    print(f"wrote {target}")
