"""``netlab bench --servers N``: the clients spread over N servers of one embedded cluster,
every copy counted across them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from redis_helpers import needs_redis


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netlab", "bench", *args], capture_output=True, text=True, timeout=60
    )


@needs_redis
@pytest.mark.timeout(60)
def test_bench_spreads_the_clients_over_a_cluster():
    done = bench(
        *("--servers", "2", "--clients", "40", "--senders", "4", "--messages", "25"),
        *("--format", "json"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert len(result["target"].split(",")) == 2
    assert result["joined"] == 40 and result["expected"] == 4 * 25 * 39
    assert result["delivered"] == result["expected"] and result["echoed"] == 0


def test_servers_is_not_for_a_running_target():
    done = bench("--servers", "2", "--target", "127.0.0.1:9")
    assert done.returncode == 2 and "not with --target" in done.stderr
