"""Self-contained HTML reports for ``netlab simulate``, ``check`` and ``bench`` (docs/reports.md).

Each builder takes the command's plain JSON document (what ``--report`` or ``--format json``
writes) and returns one HTML page with everything inline::

    from netlab import html
    html.write("demo.html", html.simulate_report([document]))
"""

from __future__ import annotations

from netlab.html.bench import bench_report
from netlab.html.check import check_report
from netlab.html.page import save, unwritable, write
from netlab.html.simulate import simulate_report
from netlab.html.transcript import with_transcript

__all__ = [
    "bench_report",
    "check_report",
    "save",
    "simulate_report",
    "unwritable",
    "with_transcript",
    "write",
]
