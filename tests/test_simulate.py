"""``netlab simulate`` as a user runs it: a subprocess, its output, its exit status, its report."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import psutil
import pytest
from helpers import NETLAB, ROOT, free_port

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
    assert "kicked by alice" in done.stdout
    assert "refused as expected" in done.stdout
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
    assert "alice > Hello everyone! 👋" in transcript.read_text(encoding="utf-8")


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
    # The first scenario is under way once its bot holds a connection to the embedded server.
    deadline = time.monotonic() + 20
    while not any(c.status == "ESTABLISHED" for c in psutil.Process(proc.pid).net_connections()):
        assert time.monotonic() < deadline and proc.poll() is None, "the first scenario never ran"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, out + err
    assert err.count("interrupted") == 1 and "Traceback" not in err
    assert "second" not in out + err  # the second scenario never started
