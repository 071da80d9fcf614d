"""Every number option refuses inf and NaN with one line and exit status 2 (issue 11, item 15)."""

from __future__ import annotations

import subprocess

import pytest
from helpers import NETLAB


@pytest.mark.parametrize(
    "args",
    [
        ["serve", "--rate-limit", "inf"],
        ["serve", "--rate-limit", "1e308"],
        ["serve", "--handshake-timeout", "nan"],
        ["bench", "--rate", "inf"],
        ["bench", "--join-timeout", "inf"],
        ["check", "--timeout", "nan", "--", "true"],
        ["check", "--timeout", "inf", "--", "true"],
        ["simulate", "demo", "--speed", "inf"],
        ["sockets", "--interval", "nan"],
    ],
)
def test_a_number_that_is_not_finite_is_refused_in_one_line(args):
    done = subprocess.run([*NETLAB, *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip(), "says why"
