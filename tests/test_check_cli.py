"""The contract of ``netlab check`` as a command: options, exit codes 0/1/2/3, the JSON keys,
JUnit XML, --list, --each, --target, and every case documented in docs/check.md."""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET

import pytest
from check_helpers import CORPUS, PY, corpus, netlab_check
from helpers import ROOT, free_port, wait_listening

from netlab.check.registry import ALL_CASES, CLIENT_CASES, SERVER_CASES

CASE_KEYS = {"id", "section", "outcome", "expected", "observed", "lesson", "duration_s", "log"}
SUMMARY_KEYS = {"pass", "fail", "warn", "skip", "error"}


def test_list_names_every_case_with_section_and_needs() -> None:
    run = netlab_check("--list")
    assert run.status == 0
    for case in ALL_CASES:
        assert re.search(rf"^{re.escape(case.id)}\s+{case.section}\s", run.out, re.M), case.id
    assert re.search(r"^leave\.close-wait .* process$", run.out, re.M)
    assert re.search(r"^admin\.kick .* --kick-command$", run.out, re.M)


def test_the_case_ids_are_the_contract() -> None:
    assert [c.id for c in SERVER_CASES] == [
        "connect.prompt", "connect.join", "chat.broadcast", "chat.no-echo", "chat.utf8",
        "chat.utf8-split", "chat.burst", "chat.long", "leave.notice", "leave.abrupt",
        "leave.reset-burst", "leave.close-wait", "leave.idle-cpu", "leave.fd-leak",
        "nick.reserved", "nick.duplicate", "limit.refusal", "limit.busy-loop",
        "limit.recovers", "slow.reader", "security.impersonation", "admin.kick",
        "shutdown.signal",
    ]  # fmt: skip
    assert [c.id for c in CLIENT_CASES] == [
        "client.nick", "client.send", "client.timestamp", "client.receive", "client.utf8",
        "client.merged", "client.exit-command", "client.server-loss",
    ]  # fmt: skip


def test_docs_have_a_section_for_every_case() -> None:
    text = (ROOT / "docs" / "check.md").read_text()
    for case in ALL_CASES:
        assert re.search(rf"^### `{re.escape(case.id)}`$", text, re.M), case.id


@pytest.mark.parametrize(
    "args, says",
    [
        (["--protocol", "bogus", "--", PY, "x.py"], "--protocol"),
        (["--format", "xml", "--", PY, "x.py"], "--format"),
        ([], "nothing to check"),
        (["--target", "nonsense"], "HOST:PORT"),
        (["--cases", "nosuch.*", "--", PY, "x.py"], "no case matches"),
        (["--each", "*.py", "--", PY, "server.py"], "{file}"),
        (["--each", "/nonexistent/*.py", "--", PY, "{file}"], "matches no file"),
        (["--timeout", "0", "--", PY, "x.py"], "--timeout"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args: list[str], says: str) -> None:
    run = netlab_check(*args)
    assert run.status == 2
    assert says in run.err
    assert len(run.err.strip().splitlines()) == 1, run.err
    assert "Traceback" not in run.err


def test_a_server_that_cannot_start_exits_3() -> None:
    run = netlab_check("--", PY, "-c", "import sys; print('no', file=sys.stderr); sys.exit(4)")
    assert run.status == 3
    assert "status 4" in run.err and "no" in run.err
    assert len(run.err.strip().splitlines()) == 1


DIES_AFTER_ONE = """
import socket, sys
listener = socket.create_server((sys.argv[1], int(sys.argv[2])))
client, _ = listener.accept()
client.send(b"NICK")
client.recv(1024)
sys.exit("boom: one client was enough")
"""


def test_a_server_that_dies_mid_case_is_named_with_its_step_and_stderr() -> None:
    run = netlab_check(
        "--format", "json", "--cases", "chat.broadcast", "--cases", "chat.burst",
        "--", PY, "-c", DIES_AFTER_ONE, "{host}", "{port}",
    )  # fmt: skip
    assert run.status == 1
    for case in run.json()["cases"]:  # a fresh server for each case: both die the same way
        assert case["outcome"] == "fail"
        # Step 1 is the first joins, alice's among them (their handshakes overlap).
        assert re.match(
            r"the server exited with status 1 at step 1 \(alice(, \w+)* join\)", case["observed"]
        ), case["observed"]
        assert "its last stderr lines: boom: one client was enough" in case["observed"]


NEVER_WELCOMES = """
import socket, sys, time
listener = socket.create_server((sys.argv[1], int(sys.argv[2])))
client, _ = listener.accept()  # one at a time, as the handout's server: the next waits
client.send(b"NICK")
client.recv(1024)
time.sleep(60)
"""


def test_a_join_that_hangs_is_blamed_on_the_client_that_was_not_welcomed() -> None:
    """Joins overlap, but the one reported is the first not welcomed (alice), not the next
    one, whose prompt such a server never sends."""
    run = netlab_check(
        "--format", "json", "--cases", "chat.broadcast", "--timeout", "8",
        "--", PY, "-c", NEVER_WELCOMES, "{host}", "{port}",
    )  # fmt: skip
    (case,) = run.json()["cases"]
    assert case["outcome"] == "fail"
    assert re.match(r"alice\S* could not join: no 'Connected to server!'", case["observed"]), case


def test_a_target_nothing_listens_on_exits_3() -> None:
    run = netlab_check("--target", f"127.0.0.1:{free_port()}")
    assert run.status == 3
    assert "could not be reached" in run.err


def test_json_document_keys_and_exit_1_on_a_fail() -> None:
    run = netlab_check(
        "--format", "json", "--cases", "chat.utf8", "--cases", "admin.kick", "--",
        *corpus("server_ascii"),
    )  # fmt: skip
    assert run.status == 1
    doc = run.json()
    assert set(doc) == {"target", "protocol", "cases", "summary"}
    assert doc["protocol"] == "handout"
    assert set(doc["summary"]) == SUMMARY_KEYS
    assert doc["summary"]["fail"] == 1 and doc["summary"]["skip"] == 1
    for case in doc["cases"]:
        assert set(case) == CASE_KEYS
    utf8 = doc["cases"][0]
    assert utf8["section"] == "chat" and utf8["outcome"] == "fail"
    assert "docs/check.md#chatutf8" in utf8["lesson"]
    assert any(entry["event"] == "send" for entry in utf8["log"])
    assert doc["cases"][1]["observed"].startswith("needs an option")


def test_a_warn_exits_0_and_junit_is_xml() -> None:
    run = netlab_check(
        "--format", "junit", "--cases", "chat.no-echo", "--cases", "leave.close-wait",
        "--cases", "admin.kick", "--", *corpus("server_echo"),
    )  # fmt: skip
    assert run.status == 0, run.err
    suite = ET.fromstring(run.out).find("testsuite")
    assert suite is not None and suite.get("tests") == "3" and suite.get("skipped") == "1"
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert cases["chat.no-echo"].find("system-out").text.startswith("warn")
    assert cases["admin.kick"].find("skipped") is not None
    assert cases["leave.close-wait"].find("failure") is None


def test_table_shows_each_case_and_a_summary() -> None:
    run = netlab_check(
        "--cases", "chat.broadcast", "--cases", "admin.kick", "--", *corpus("server_fixed")
    )
    assert run.status == 0
    assert re.search(r"^chat\.broadcast\s+pass\s+[\d.]+\s+bob and carol got", run.out, re.M)
    assert re.search(r"^admin\.kick\s+skip\s", run.out, re.M)
    assert "2 cases: 1 pass, 0 fail, 0 warn, 1 skip, 0 error" in run.out


def test_each_gives_a_row_per_file_and_a_summary_per_case() -> None:
    pattern = str(CORPUS / "server_[ef]*.py")  # server_echo.py and server_fixed.py
    run = netlab_check(
        "--each", pattern, "--cases", "chat.no-echo", "--", PY, "{file}", "{host}", "{port}"
    )
    assert run.status == 0, run.err
    assert re.search(r"server_echo\.py\s+warn", run.out)
    assert re.search(r"server_fixed\.py\s+pass", run.out)
    assert re.search(r"^chat\.no-echo\s+1\s+0\s+1\s+0\s+0$", run.out, re.M), run.out
    doc = netlab_check(
        "--each", pattern, "--cases", "chat.no-echo", "--format", "json", "--",
        PY, "{file}", "{host}", "{port}",
    ).json()  # fmt: skip
    files = [s["file"] for s in doc["submissions"]]
    assert [f.rsplit("/", 1)[1] for f in files] == ["server_echo.py", "server_fixed.py"]
    assert {s["summary"]["warn"] for s in doc["submissions"]} == {0, 1}


def test_target_mode_skips_what_needs_the_process() -> None:
    port = free_port()
    server = subprocess.Popen(
        [*(a.format(host="127.0.0.1", port=port) for a in corpus("server_fixed"))]
    )
    try:
        wait_listening(port)
        run = netlab_check(
            "--target", f"127.0.0.1:{port}", "--format", "json",
            "--cases", "chat.broadcast", "--cases", "leave.idle-cpu",
        )  # fmt: skip
    finally:
        server.kill()
        server.wait()
    assert run.status == 0, run.err
    assert run.outcomes() == {"chat.broadcast": "pass", "leave.idle-cpu": "skip"}
    assert "needs the process" in run.json()["cases"][1]["observed"]


def test_ctrl_c_shows_the_finished_cases_and_leaves_no_server_behind() -> None:
    """The student's server runs in a session of its own (the terminal's SIGINT misses it):
    a Ctrl-C stops it, prints the cases that finished, and exits 130."""
    import contextlib
    import os
    import signal
    import time

    import psutil
    from helpers import NETLAB

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = ["--cases", "chat.broadcast", "--cases", "leave.idle-cpu", "--cases", "limit.busy-loop"]
    check = subprocess.Popen(
        [*NETLAB, "check", *args, "--", *corpus("server_fixed")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )

    def servers() -> list[psutil.Process]:
        with contextlib.suppress(psutil.Error):
            kids = psutil.Process(check.pid).children(recursive=True)
            return [p for p in kids if "server_fixed" in " ".join(p.cmdline())]
        return []

    try:
        seen: set[int] = set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(seen) < 3:  # reachable, case 1, then case 2
            seen |= {p.pid for p in servers()}
            time.sleep(0.02)
        running = servers()
        check.send_signal(signal.SIGINT)
        out, err = check.communicate(timeout=20)
    finally:
        check.kill()
    assert check.returncode == 130, err
    assert "interrupted (Ctrl-C)" in err and "Traceback" not in err
    assert re.search(r"chat\.broadcast\s+pass", out)
    assert len(seen) >= 3 and running
    assert not any(psutil.pid_exists(p.pid) for p in running)  # stopped before check exited


def test_a_limit_probe_cut_by_the_case_timeout_is_a_warn_not_silence() -> None:
    """netlab serve under the handout's framing waits 0.3 s for each bare nickname: within a
    short --timeout the probe runs out of time before any limit, which is not a refusal."""
    from helpers import NETLAB as RUN_NETLAB

    serve = [*RUN_NETLAB, "serve", "--host", "{host}", "--port", "{port}", "--no-console"]
    run = netlab_check("--cases", "limit.refusal", "--timeout", "4", "--", *serve)
    assert run.status == 0, run.out + run.err
    assert re.search(r"limit\.refusal\s+warn", run.out)
    assert "within the case's --timeout" in run.out
