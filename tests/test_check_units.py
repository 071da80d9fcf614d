"""The pure parts of netlab check: notices counted, reports drawn from results, the registry."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from netlab.check import report
from netlab.check.ctx import is_stamped, left_notices
from netlab.check.model import Outcome, Result
from netlab.check.registry import ALL_CASES, BY_ID
from netlab.check.runner import Submission
from netlab.check.wire import MAX_LOG_ENTRIES, WireLog


def test_left_notices_count_each_way_a_leave_is_told() -> None:
    assert left_notices("bob left the chat.", "bob") == 1
    assert left_notices("bob has left the chat.", "bob") == 1  # the handout's leaving, relayed
    assert left_notices("bob has left the chat.bob left the chat.", "bob") == 2
    assert left_notices("2 users left: alice and bob\n", "bob") == 1
    assert left_notices("bobby left the chat.", "bob") == 0
    assert left_notices("bob joined the chat!", "bob") == 0


def test_stamps_are_the_handout_clients() -> None:
    assert is_stamped("[2026-12-01 22:34:41] alice: hi")
    assert not is_stamped("alice: hi [22:34]")


def _results() -> list[Result]:
    return [
        Result("chat.burst", "chat", Outcome.WARN, "in order", "merged", "one recv...", 0.2),
        Result("leave.idle-cpu", "leave", Outcome.FAIL, "< 20 %", "91 %", "spins", 3.1),
        Result("admin.kick", "admin", Outcome.SKIP, "kick", "needs an option", None, 0.0),
        Result("chat.utf8", "chat", Outcome.ERROR, "bytes", "netlab check failed", None, 0.1),
    ]


def test_junit_maps_each_outcome() -> None:
    xml = report.junit([Submission("", "handout", _results())])
    suite = ET.fromstring(xml).find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("4", "1", "1")
    kinds = {c.get("name"): [e.tag for e in c] for c in suite.iter("testcase")}
    assert kinds == {
        "chat.burst": ["system-out"],
        "leave.idle-cpu": ["failure"],
        "admin.kick": ["skipped"],
        "chat.utf8": ["error"],
    }


def test_each_document_has_one_entry_per_file() -> None:
    subs = [
        Submission("a/server.py", "handout", _results()),
        Submission("b/server.py", "handout", []),
    ]
    doc = json.loads(report.render("python {file}", subs, "json", each=True))
    assert [s["file"] for s in doc["submissions"]] == ["a/server.py", "b/server.py"]
    assert doc["submissions"][0]["summary"] == {
        "pass": 0,
        "fail": 1,
        "warn": 1,
        "skip": 1,
        "error": 1,
    }


def test_the_tables_fit_the_terminal_and_keep_every_word(monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    observed = "alice got her own message back: '[2026-12-02 00:34:40] alice: m00002x' twice"
    long = Result("chat.no-echo", "chat", Outcome.WARN, "no copy", observed, None, 0.47)
    text = report.render("python x.py", [Submission("", "handout", [long])], "table", False)
    lines = text.split("\n\nWARN")[0].splitlines()  # the table; the notes below are prose
    assert len(lines) > 5 and max(len(line) for line in lines) <= 80
    assert f"chat.no-echo warn 0.47 {observed}" in " ".join(text.split())
    folder = "students/" + "a-very-long-folder-name-" * 4
    subs = [Submission(f"{folder}/server.py", "handout", [long])]
    text = report.render("python {file}", subs, "table", each=True)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert f"{folder}/server.py" in "".join(text.replace("warn", "").split())


def test_the_wire_log_is_bounded() -> None:
    log = WireLog()
    for _ in range(MAX_LOG_ENTRIES + 10):
        log.add("alice", "send", b"x" * 1000)
    entries = log.export()
    assert len(entries) == MAX_LOG_ENTRIES + 1
    assert entries[-1]["data"] == "10 more entries not kept"
    assert entries[0]["bytes"] == 1000 and entries[0]["data"].endswith("...")


def test_every_case_has_a_lesson_and_an_anchor() -> None:
    assert len(BY_ID) == len(ALL_CASES) == 31
    for case in ALL_CASES:
        assert case.lesson and case.checks
        assert case.anchor == f"docs/check.md#{case.id.replace('.', '')}"
