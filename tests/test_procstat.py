"""procstat: a process's CPU time, read finely where Linux allows it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from netlab.procstat import ProcessWatch


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="needs Linux's /proc")
def test_a_few_threads_are_timed_to_the_nanosecond_and_agree_with_the_clock_ticks():
    spin = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n"
    child = subprocess.Popen(
        [sys.executable, "-c", spin + "print('spun', flush=True)\ninput()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        watch = ProcessWatch(child.pid)
        import psutil

        process = psutil.Process(child.pid)
        assert child.stdout.readline() == "spun\n"  # the spin is over; it now waits, idle
        precise = watch.cpu_seconds()
        assert watch.cpu_resolution == 1e-9
        ticks = process.cpu_times()
        assert abs(precise - (ticks.user + ticks.system)) < 0.05
    finally:
        child.kill()
        child.communicate()  # and its pipes closed
    assert ProcessWatch(None).cpu_seconds() is None
