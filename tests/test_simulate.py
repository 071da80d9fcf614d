"""``netlab simulate`` as a user runs it: a subprocess, its output, its exit status, its report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import psutil
import pytest
from helpers import NETLAB, ROOT, free_port, interrupt_when

from netlab import tables
from netlab.scenario import load
from netlab.sim.loading import builtins

SCENARIOS = ROOT / "scenarios"
REPORT_KEYS = {"scenario", "passed", "duration_s", "totals", "bots", "expectations", "sockets"}
TOTALS_KEYS = {"bots", "sent", "expected", "delivered", "lost", "delivery_ratio", "errors"}


def simulate(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*NETLAB, "simulate", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_demo_end_to_end(tmp_path):
    report, transcript = tmp_path / "demo.json", tmp_path / "demo.txt"
    done = simulate("scenarios/demo", "--report", str(report), "--transcript", str(transcript))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "PASSED demo: all 4 expectations held" in done.stdout
    said = " ".join(done.stdout.split())  # the outcomes may wrap in the table
    assert "0 kicked by alice" in said
    assert "0 refused as expected, then stayed to the end" in said
    assert done.stdout.count("Sockets of the chat port at") == 2
    document = json.loads(report.read_text(encoding="utf-8"))
    assert set(document) >= REPORT_KEYS
    assert TOTALS_KEYS | {"latency_ms"} <= set(document["totals"])
    assert set(document["totals"]["latency_ms"]) == {"p50", "p95", "p99", "max"}
    totals = document["totals"]
    assert totals["expected"] == totals["delivered"] + totals["lost"]
    assert totals["lost"] == 0 and totals["errors"] == 0 and totals["bots"] == 7
    for bot in document["bots"]:
        assert {"nick", "sent", "expected", "delivered", "lost", "latency_ms", "errors"} <= set(bot)
    assert all(e["passed"] for e in document["expectations"])
    assert [round(s["at_s"]) for s in document["sockets"]] == [5, 17]
    listening = [row for row in document["sockets"][0]["rows"] if row["state"] == "LISTEN"]
    assert len(listening) == 1
    said = transcript.read_text(encoding="utf-8")
    assert "alice > Hello everyone! 👋" in said
    assert "alice > /login ********" in said and "/login secret" not in said  # no password
    timeline = document["timeline"]  # the run over time, for the HTML report (issue 15)
    assert sum(second["delivered"] for second in timeline["seconds"]) == totals["delivered"]
    assert {"join", "leave", "drop", "kick", "refused"} <= {e["kind"] for e in timeline["events"]}
    assert all("recipients" in message for message in timeline["messages"])


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_crowd_at_double_speed(tmp_path):
    report = tmp_path / "crowd.json"
    done = simulate("scenarios/crowd", "--speed", "2", "--quiet", "--report", str(report))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "PASSED crowd: all 3 expectations held"  # --quiet
    totals = json.loads(report.read_text(encoding="utf-8"))["totals"]
    assert totals["bots"] == 300 and totals["sent"] > 1500
    assert totals["delivered"] == totals["expected"] > 300_000


@pytest.mark.timeout(60)
def test_handout_scenario_on_the_embedded_server():
    done = simulate("scenarios/handout.yaml", "--speed", "2", "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr


RUN_HERE = {"demo": test_demo_end_to_end, "crowd": test_crowd_at_double_speed}
RUN_HERE["handout"] = test_handout_scenario_on_the_embedded_server
RUN_HERE["cluster"] = "tests/test_cluster_scenario.py"  # needs redis-server: run there


def test_every_shipped_scenario_is_run_by_a_test():
    """A scenario shipped without a test that runs it would break unnoticed."""
    assert {path.stem for path in SCENARIOS.glob("*.yaml")} == set(RUN_HERE)


def test_login_under_the_handout_protocol_is_a_scenario_error():
    done = simulate("scenarios/demo", "--protocol", "handout", "--target", "127.0.0.1:9")
    assert done.returncode == 2
    assert "demo.yaml: bots[0].script[2]: `login` needs the netlab protocol" in done.stderr
    assert "Traceback" not in done.stderr


def test_invalid_scenario_exits_2_naming_the_place(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nbots:\n  - nick: a\n    script: [{do: join, at: soon}]\n")
    done = simulate(str(path))
    assert done.returncode == 2
    assert f"{path}: bots[0].script[0].at: bad duration 'soon'" in done.stderr
    assert "Traceback" not in done.stderr
    missing = simulate(str(tmp_path / "nothing"))
    assert missing.returncode == 2 and "no such scenario" in missing.stderr


def test_bad_arguments_exit_2():
    assert simulate("scenarios/demo", "--target", "nowhere").returncode == 2
    assert simulate("scenarios/demo", "--speed", "0").returncode == 2
    assert simulate("scenarios/demo", "--protocol", "irc").returncode == 2


@pytest.mark.timeout(60)
def test_unreachable_target_exits_3():
    done = simulate("scenarios/demo", "--target", f"127.0.0.1:{free_port()}")
    assert done.returncode == 3
    assert "cannot reach 127.0.0.1" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.timeout(60)
def test_failed_expectation_exits_1(tmp_path):
    path = tmp_path / "fails.yaml"
    path.write_text(
        "name: fails\nbots:\n  - nick: a\n    script:\n      - {do: join}\n"
        "      - {do: expect, text: nobody says this, within: 200ms}\n"
    )
    done = simulate(str(path), "--report", str(tmp_path / "r.json"))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED fails" in done.stdout
    assert "expect 'nobody says this': not received within 0.2s" in done.stdout
    document = json.loads((tmp_path / "r.json").read_text())
    assert document["passed"] is False
    assert document["bots"][0]["errors"] == ["expect 'nobody says this': not received within 0.2s"]


@pytest.mark.timeout(60)
def test_a_directory_runs_every_scenario(tmp_path):
    for name in ("one", "two"):
        (tmp_path / f"{name}.yaml").write_text(
            f"name: {name}\nbots:\n  - nick: a\n    script: [{{do: join}}]\n"
        )
    done = simulate(str(tmp_path), "--report", str(tmp_path / "r.json"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 of 2 scenarios passed" in done.stdout
    assert (tmp_path / "r-one.json").is_file() and (tmp_path / "r-two.json").is_file()


def test_ctrl_c_stops_a_directory_run(tmp_path):
    for name in ("first", "second"):
        (tmp_path / f"{name}.yaml").write_text(
            f"name: {name}\nbots:\n  - nick: {name}\n"
            "    script: [{do: join}, {do: wait, for: 30s}]\n",
            encoding="utf-8",
        )
    report = tmp_path / "run.json"
    proc = subprocess.Popen(
        [*NETLAB, "simulate", str(tmp_path), "--quiet", "--report", str(report)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    # The first scenario is under way once its bot holds a connection to the embedded
    # server: the moment its welcome arrives, which is when a Ctrl-C was once lost.
    out, err = interrupt_when(
        proc,
        lambda: any(c.status == "ESTABLISHED" for c in psutil.Process(proc.pid).net_connections()),
    )
    assert proc.returncode == 130, out + err
    assert err.count("interrupted") == 1 and "Traceback" not in err
    assert "second" not in out + err  # the second scenario never started


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000,
        "name: s\nseed: " + "9" * 5000 + "\nbots: [{nick: a, script: [{do: join}]}]\n",
        "name: s\nserver: {options: {rate_limit: .inf}}\nbots: [{nick: a, script: [{do: join}]}]\n",
        "name: s\nbots:\n" + "".join(f"  - {{group: g{i}, count: 100000}}\n" for i in range(100)),
    ],
    ids=["deep", "seed", "inf", "crowds"],
)
def test_a_file_that_would_eat_the_machine_exits_2_with_one_line(tmp_path, text):
    path = tmp_path / "eater.yaml"
    path.write_text(text, encoding="utf-8")
    began = time.monotonic()
    done = simulate(str(path), timeout=20)
    assert done.returncode == 2, done.stdout + done.stderr
    assert time.monotonic() - began < 5  # the interpreter's start included; load() is < 0.5 s
    assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith(str(path))
    assert done.stdout == ""


def wait_for(condition, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {timeout:g} s"
        time.sleep(0.02)


def read_line(proc: subprocess.Popen, timeout: float = 20.0) -> str:
    import selectors

    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        assert selector.select(timeout), f"no line within {timeout:g} s"
    return proc.stdout.readline()


LATE_JOIN = (
    "name: late\nbots:\n  - nick: a\n    script: [{at: 1s, do: join}, {do: wait, for: 1s}]\n"
    "  - nick: b\n    script: [{at: 1s, do: join}, {do: say, text: hi}]\n"
)


@pytest.mark.timeout(60)
def test_the_header_comes_before_the_first_join_and_the_transcript_follows_live(tmp_path):
    path, transcript = tmp_path / "late.yaml", tmp_path / "late.txt"
    path.write_text(LATE_JOIN, encoding="utf-8")
    proc = subprocess.Popen(
        [*NETLAB, "simulate", str(path), "--transcript", str(transcript)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    try:
        head = read_line(proc)
        assert head.startswith("late: 2 bots, netlab protocol, embedded netlab serve on 127.0.0.1:")
        assert "registered" not in transcript.read_text(encoding="utf-8")  # nobody joined yet
        # While the run goes on (a waits 1 s after joining), its lines are in the file.
        wait_for(lambda: "b > hi" in transcript.read_text(encoding="utf-8"), what="transcript")
        assert proc.poll() is None
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, out + err
    assert "PASSED late" in out


@pytest.mark.timeout(60)
def test_a_closed_pipe_leaves_the_verdicts_exit_status(tmp_path):
    """`netlab simulate ... | head -2`: exit 0 for a run that passed, not 1, and no traceback."""
    path = tmp_path / "late.yaml"
    path.write_text(LATE_JOIN, encoding="utf-8")
    proc = subprocess.Popen(
        [*NETLAB, "simulate", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert read_line(proc).startswith("late: 2 bots")
    proc.stdout.close()  # as `head -1` does once it has its line
    err = proc.stderr.read()
    assert proc.wait(timeout=30) == 0, err
    assert "Traceback" not in err and "Exception ignored" not in err
    proc.stderr.close()


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_with_a_target_the_options_that_cannot_apply_are_said_up_front(server_factory):
    server = server_factory("--admin-password", "secret")  # room for zoe: max_clients is 100
    done = simulate(
        "scenarios/demo", "--target", f"127.0.0.1:{server.port}", "--speed", "4", timeout=60
    )
    first = done.stderr.splitlines()[0]
    assert f"server.options cannot apply to 127.0.0.1:{server.port}" in first
    assert "--max-clients 6" in first
    assert done.returncode == 1, done.stdout + done.stderr
    assert "zoe: join: expected to be refused, but was connected" in done.stdout
    assert "already taken" not in done.stdout  # no cascade from her own first connection
    said = " ".join(done.stdout.split())  # the Measured text may wrap in the table
    assert "FAIL errors <= 0 zoe: join: expected to be refused, but was connected" in said


def netlab_in(cwd, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*NETLAB, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("columns", [80, 400])
def test_list_shows_the_built_in_scenarios_and_fits_the_terminal(tmp_path, columns):
    env = {**os.environ, "COLUMNS": str(columns)}
    done = netlab_in(tmp_path, "simulate", "--list", env=env)
    assert done.returncode == 0, done.stderr
    header, rule, *lines = done.stdout.splitlines()
    assert header.split() == ["Name", "Bots", "Duration", "What", "it", "shows"]
    assert set(rule) <= {"-", " "}
    rows = [line for line in lines if not line.startswith(" ")]  # not a wrapped description
    found = {row.split()[0]: row.split()[1] for row in rows}
    assert found == {"cluster": "10", "crowd": "300", "demo": "7", "handout": "4"}
    assert max(map(tables.cell_width, done.stdout.splitlines())) <= columns
    assert (len(lines) > len(rows)) is (columns == 80)  # wrapped only where it must
    said = " ".join(done.stdout.split())
    for file in builtins():  # every description whole, its wrapped lines joined back
        description = " ".join(load(file).description.split())
        assert description in said, file.stem


@pytest.mark.timeout(60)
def test_a_built_in_name_runs_from_any_folder(tmp_path):
    # The name finds the installed file; the run then goes as any (here to a closed port).
    done = netlab_in(tmp_path, "simulate", "handout", "--target", f"127.0.0.1:{free_port()}")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "netlab/scenarios/handout.yaml: cannot reach 127.0.0.1:" in done.stderr
    missing = netlab_in(tmp_path, "simulate", "nothing")
    assert missing.returncode == 2
    assert "built in: cluster, crowd, demo, handout" in missing.stderr


def test_no_scenario_is_a_usage_error():
    done = simulate()
    assert done.returncode == 2 and "netlab simulate --list shows them" in done.stderr


def test_help_names_every_exit_status():
    done = simulate("--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.replace("│", " ").split())
    assert "130 interrupted (Ctrl-C)" in text and "3 the target could not be reached" in text


@pytest.mark.timeout(60)
def test_the_package_carries_the_scenarios(tmp_path):
    """What `pip install .` installs (setuptools' build_py, from a copy of the tree) has the
    scenarios as package data, and `netlab simulate --list` finds them there."""
    import os
    import shutil

    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "netlab", source / "netlab", ignore=shutil.ignore_patterns("__pycache__")
    )
    built = tmp_path / "built"
    done = subprocess.run(
        [sys.executable, "-c", "import setuptools; setuptools.setup()", "-q", "build_py",
         "--build-lib", str(built)],
        capture_output=True, text=True, timeout=60, cwd=source,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (built / "netlab" / "scenarios" / "demo.yaml").is_file()
    assert (built / "netlab" / "sim" / "engine.py").is_file()
    listed = netlab_in(tmp_path, "simulate", "--list", env={**os.environ, "PYTHONPATH": str(built)})
    assert listed.returncode == 0 and "demo" in listed.stdout, listed.stderr


@pytest.mark.timeout(60)
def test_the_live_line_on_a_terminal_leads_with_the_header(tmp_path):
    import re

    import pexpect

    path = tmp_path / "late.yaml"
    path.write_text(LATE_JOIN, encoding="utf-8")
    child = pexpect.spawn(
        NETLAB[0],
        [*NETLAB[1:], "simulate", str(path)],
        cwd=str(ROOT),
        encoding="utf-8",
        dimensions=(24, 80),  # the live line fits 80 columns
    )
    try:
        child.expect(pexpect.EOF, timeout=40)
    finally:
        child.close()
    screen = re.sub(r"\x1b\[[\d;?]*[A-Za-z]", "", child.before)  # the terminal's styles
    live = r" late  127\.0\.0\.1:\d+  netlab +\d+\.\ds  online [0-2]/2  sent \d  delivered \d"
    assert re.search(live, screen), screen[:500]
    assert "PASSED late" in screen
    assert child.exitstatus == 0
