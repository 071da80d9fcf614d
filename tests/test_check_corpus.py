"""Each corpus program (a handout-style server or client with one classic bug, or fixed) gets
exactly its outcome in the cases that bug is about. The programs are checked two at a time,
each only on the cases that matter for it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from check_helpers import Run, cases_args, corpus, netlab_check

SERVERS = {
    "server_fixed": {
        "connect.prompt": "pass",
        "chat.broadcast": "pass",
        "chat.no-echo": "pass",
        "chat.utf8": "pass",
        "chat.utf8-split": "pass",
        "chat.burst": "pass",
        "chat.long": "pass",
        "leave.notice": "pass",
        "leave.abrupt": "pass",
        "leave.reset-burst": "pass",
        "leave.close-wait": "pass",
        "leave.idle-cpu": "pass",
        "nick.reserved": "pass",
        "nick.duplicate": "pass",
        "limit.refusal": "pass",
        "limit.recovers": "pass",
        "slow.reader": "pass",
        "security.impersonation": "pass",
        "shutdown.signal": "pass",
    },
    # Not leave.abrupt: whether one reset kills this server is a race (does its reader see
    # the RST before the next broadcast?), so that case catches it in some runs only.
    "server_reset_kills": {"leave.reset-burst": "fail", "chat.broadcast": "pass"},
    "server_busy_full": {"limit.busy-loop": "fail", "limit.refusal": "fail"},
    "server_silent_full": {"limit.refusal": "fail", "limit.busy-loop": "pass"},
    "server_no_close": {"leave.close-wait": "fail", "leave.idle-cpu": "fail"},
    "server_echo": {"chat.no-echo": "warn", "chat.broadcast": "pass"},
    "server_ascii": {"chat.utf8": "fail", "chat.broadcast": "pass"},
    "server_blocking_broadcast": {"slow.reader": "fail"},
    "server_duplicate": {"nick.duplicate": "fail", "nick.reserved": "pass"},
    "server_reserved_case": {"nick.reserved": "fail", "nick.duplicate": "pass"},
}
CLIENTS = {
    "client_fixed": {
        "client.nick": "pass",
        "client.send": "pass",
        "client.timestamp": "pass",
        "client.receive": "pass",
        "client.utf8": "pass",
        "client.merged": "pass",
        "client.exit-command": "pass",
        "client.server-loss": "pass",
    },
    "client_spin_on_loss": {"client.server-loss": "fail"},
    "client_ascii": {"client.utf8": "fail"},
    "client_no_stamp": {"client.timestamp": "warn"},
}
PROGRAMS = {**SERVERS, **CLIENTS}


def _check(name: str) -> Run:
    mode = ["--client"] if name.startswith("client") else []
    return netlab_check(
        *mode, "--format", "json", *cases_args(list(PROGRAMS[name])), "--", *corpus(name)
    )


@pytest.fixture(scope="module")
def runs() -> dict[str, Run]:
    # Two at a time: the machine has two cores, and the CPU cases measure a quiet server.
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(PROGRAMS, pool.map(_check, PROGRAMS), strict=True))


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", list(PROGRAMS))
def test_corpus_program_gets_its_outcomes(runs: dict[str, Run], name: str) -> None:
    run = runs[name]
    assert run.err == "" or "Traceback" not in run.err, run.err
    got = run.outcomes()
    observed = {case["id"]: case["observed"] for case in run.json()["cases"]}
    assert got == PROGRAMS[name], observed
    failed = "fail" in PROGRAMS[name].values()
    assert run.status == (1 if failed else 0)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_every_fail_and_warn_explains_itself(runs: dict[str, Run]) -> None:
    for run in runs.values():
        for case in run.json()["cases"]:
            if case["outcome"] in ("fail", "warn"):
                assert case["observed"] and case["expected"]
                assert "docs/check.md#" in case["lesson"]
                assert case["log"], case["id"]
