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
    child = subprocess.Popen([sys.executable, "-c", spin + "input()"], stdin=subprocess.PIPE)
    try:
        watch = ProcessWatch(child.pid)
        import psutil

        process = psutil.Process(child.pid)
        while process.cpu_times().user < 0.3:  # until the spin is over
            pass
        precise = watch.cpu_seconds()
        assert watch.cpu_resolution == 1e-9
        ticks = process.cpu_times()
        assert abs(precise - (ticks.user + ticks.system)) < 0.05
    finally:
        child.kill()
        child.wait()
    assert ProcessWatch(None).cpu_seconds() is None
