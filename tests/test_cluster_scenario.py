"""``netlab simulate`` on a cluster: the shipped scenarios/cluster.yaml (three embedded
servers, one killed mid-chat), bots spread over several ``--target``, and the refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers import ROOT
from redis_helpers import needs_redis
from test_cluster_serve import cluster_of, redis  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.timeout(60)]


def simulate(*args: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netlab", "simulate", *args],
        capture_output=True,
        text=True,
        timeout=50,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
    )


@needs_redis
@pytest.mark.slow
def test_the_shipped_cluster_scenario_passes(tmp_path):
    report = tmp_path / "cluster.json"
    done = simulate("scenarios/cluster.yaml", "--quiet", "--report", str(report))
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(report.read_text())
    assert result["embedded_server"] and len(result["target"].split(",")) == 3
    dead = {b["nick"] for b in result["bots"] if b["errors"]}
    assert dead == {"carol", "dave", "guest1", "guest4"}  # server 2's people, round robin
    assert all(
        "disconnected by the server" in b["errors"][0] for b in result["bots"] if b["errors"]
    )
    totals = result["totals"]
    assert totals["delivered"] + totals["lost"] == totals["expected"]
    # alice's and bob's expect steps saw the ghosts leave (a missed one is a fifth error).
    assert result["passed"] and all(e["passed"] for e in result["expectations"])


SCENARIO = """
name: spread
bots:
  - nick: ann
    script:
      - {at: 0s, do: join}
      - {at: 0.8s, do: say, text: "hello across"}
  - nick: ben
    script:
      - {at: 0.2s, do: join}
      - {do: expect, text: "ann: hello across", within: 4s}
      - {at: 1.5s, do: leave}
"""


@needs_redis
@pytest.mark.slow
def test_bots_spread_over_several_targets(redis, tmp_path):  # noqa: F811
    scenario = tmp_path / "spread.yaml"
    scenario.write_text(SCENARIO)
    report = tmp_path / "spread.json"
    with cluster_of(redis, 2, tmp_path, "spread") as (s1, s2):
        targets = f"{s1.host}:{s1.port},{s2.host}:{s2.port}"
        done = simulate(str(scenario), "--quiet", "--target", targets, "--report", str(report))
        assert done.returncode == 0, done.stdout + done.stderr
        assert "ann joined" in s1.log() and "ben joined" in s2.log()  # one on each, in turn
    assert json.loads(report.read_text())["target"] == targets


def test_fault_steps_need_a_cluster(tmp_path):
    scenario = tmp_path / "faults.yaml"
    scenario.write_text(
        "name: faults\nserver: {servers: 2}\nbots:\n"
        "  - nick: a\n    server: 3\n    script: [{do: join}]\n"
        "  - nick: b\n    script: [{do: kill-server, server: 5}, {do: join}]\n"
    )
    done = simulate(str(scenario))
    assert done.returncode == 2
    assert "bots[0].server: 3, but server.servers is 2" in done.stderr
    assert "bots[1].script[0]: server 5, but server.servers is 2" in done.stderr
    scenario.write_text("name: faults\nbots:\n  - nick: a\n    script: [{do: stop-redis}]\n")
    done = simulate(str(scenario))
    assert done.returncode == 2 and "`stop-redis` needs a cluster" in done.stderr


def test_without_redis_server_the_error_says_how_to_install_it(tmp_path):
    scenario = tmp_path / "two.yaml"
    scenario.write_text(
        "name: two\nserver: {servers: 2}\nbots:\n  - nick: a\n    script: [{do: join}]\n"
    )
    done = simulate(str(scenario), env={"PATH": str(tmp_path)})  # no redis-server there
    assert done.returncode == 3
    assert (
        "redis-server is not installed" in done.stderr
        and "apt-get install redis-server" in done.stderr
    )
    assert "Traceback" not in done.stderr


OUTAGE = """
name: outage
server: {servers: 2}
bots:
  - nick: ann
    script:
      - {at: 0s, do: join}
      - {at: 1s, do: stop-redis}
      - {do: expect, text: "chat with the other servers is interrupted", within: 3s}
      - {do: say, text: "alone on server 1"}
      - {at: 2.5s, do: start-redis}
      - {do: expect, text: "whole again", within: 5s}
      - {after: 0.5s, do: say, text: "together again"}
  - nick: ben
    script:
      - {at: 0.2s, do: join}
      - {do: expect, text: "whole again", within: 8s}
      - {do: expect, text: "ann: together again", within: 4s}
      - {after: 0.5s, do: leave}
"""


@needs_redis
@pytest.mark.slow
def test_stop_and_start_redis_steps(tmp_path):
    scenario = tmp_path / "outage.yaml"
    scenario.write_text(OUTAGE)
    report = tmp_path / "outage.json"
    done = simulate(str(scenario), "--quiet", "--report", str(report))
    assert done.returncode == 0, done.stdout + done.stderr
    bots = {b["nick"]: b for b in json.loads(report.read_text())["bots"]}
    # ann's line while Redis was away is lost to server 2 (pub/sub is at most once).
    assert (bots["ben"]["expected"], bots["ben"]["delivered"], bots["ben"]["lost"]) == (2, 1, 1)
