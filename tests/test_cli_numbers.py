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


@pytest.mark.parametrize(
    "args",
    [
        ["simulate", "demo", "--html", "/nonexistent/netlab/report.html"],
        ["check", "--html", "/nonexistent/netlab/report.html", "--", "true"],
        ["bench", "--html", "/nonexistent/netlab/report.html"],
    ],
)
def test_an_html_path_that_cannot_be_written_is_refused_before_the_run(args):
    done = subprocess.run([*NETLAB, *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "--html: cannot write" in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""  # nothing ran


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["bench", "--compare", "netlab", "--target", "127.0.0.1:1"], "not with --target"),
        (["bench", "--rounds", "3"], "--rounds goes with --compare"),
    ],
)
def test_bench_options_that_would_do_nothing_are_refused(args, says):
    done = subprocess.run([*NETLAB, *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and says in done.stderr, done.stderr
