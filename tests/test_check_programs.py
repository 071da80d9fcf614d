"""netlab's own programs pass every case; the handout's get the outcomes issue 13 lists."""

from __future__ import annotations

import pytest
from check_helpers import PY, cases_args, netlab_check
from helpers import HANDOUT, NETLAB

needs_handout = pytest.mark.skipif(
    not (HANDOUT / "server.py").is_file(), reason="the handout (../shared/handout) is absent"
)
SERVE = [*NETLAB, "serve", "--host", "{host}", "--port", "{port}", "--admin-password", "pw"]
SERVE += ["--rate-limit", "0", "--max-clients", "20"]

HANDOUT_SERVER = {
    "leave.reset-burst": "fail",
    "leave.close-wait": "fail",
    "leave.idle-cpu": "fail",
    "limit.refusal": "fail",
    "limit.busy-loop": "fail",
    "nick.duplicate": "fail",
    "slow.reader": "fail",
    "security.impersonation": "fail",
    "chat.burst": "warn",
    "leave.abrupt": "pass",
    "nick.reserved": "pass",
}


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_netlab_serve_passes_every_server_case() -> None:
    run = netlab_check(
        "--protocol", "netlab", "--kick-command", "/login pw;/kick {nick}", "--format", "json",
        "--", *SERVE,
    )  # fmt: skip
    doc = run.json()
    failing = {c["id"]: c["observed"] for c in doc["cases"] if c["outcome"] != "pass"}
    assert failing == {}
    assert len(doc["cases"]) == 23 and run.status == 0
    assert sum(c["duration_s"] for c in doc["cases"]) < 60


@pytest.mark.parametrize("protocol", ["netlab", "handout"])
def test_netlab_chat_passes_the_client_cases(protocol: str) -> None:
    chat = [*NETLAB, "chat", "--host", "{host}", "--port", "{port}", "--protocol", protocol]
    run = netlab_check("--client", "--protocol", protocol, "--format", "json", "--", *chat)
    assert run.status == 0, run.err
    assert set(run.outcomes().values()) == {"pass"}, run.out
    assert len(run.outcomes()) == 8


@needs_handout
@pytest.mark.slow
@pytest.mark.timeout(150)
def test_the_handout_server_gets_the_listed_outcomes() -> None:
    server = [PY, str(HANDOUT / "server.py"), "{host}", "{port}"]
    run = netlab_check("--format", "json", *cases_args(list(HANDOUT_SERVER)), "--", *server)
    assert run.status == 1
    observed = {c["id"]: c["observed"] for c in run.json()["cases"]}
    assert run.outcomes() == HANDOUT_SERVER, observed
    burst = observed["leave.reset-burst"]
    assert burst.startswith("round "), burst  # which round broke it


@needs_handout
def test_the_handout_client_does_not_survive_server_loss() -> None:
    client = [PY, str(HANDOUT / "client.py"), "{host}", "{port}"]
    run = netlab_check(
        "--client", "--format", "json", "--cases", "client.server-loss", "--", *client
    )
    assert run.status == 1
    assert run.outcomes() == {"client.server-loss": "fail"}
    assert "still running 3 s after the server closed" in run.json()["cases"][0]["observed"]


def test_kick_command_takes_the_password_from_the_server_command() -> None:
    run = netlab_check(
        "--protocol", "netlab", "--kick-command", "/login {password};/kick {nick}",
        "--format", "json", "--cases", "admin.kick", "--", *SERVE,
    )  # fmt: skip
    assert run.outcomes() == {"admin.kick": "pass"}, run.out


def test_without_a_kick_command_the_kick_case_is_skipped_with_why() -> None:
    run = netlab_check(
        "--protocol", "netlab", "--format", "json", "--cases", "admin.kick", "--", *SERVE
    )
    (case,) = run.json()["cases"]
    assert case["outcome"] == "skip" and "--kick-command" in case["observed"]
    assert run.status == 0
