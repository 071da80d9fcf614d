"""``netlab check``: a report card for a student's chat server or client (issue 13).

    from netlab.check import CheckConfig, check
    argv = ("python", "server.py", "{host}", "{port}")
    status = check(CheckConfig(protocol="handout", command=argv))

Named cases (``registry``), each with expected and observed in words, a lesson and a wire log;
a table, JSON or JUnit report; exit status 0 (no case failed), 1, 2 (bad arguments) or 3 (the
server could not be reached or started). docs/check.md explains every case.
"""

from netlab.check.runner import CheckConfig, check

__all__ = ["CheckConfig", "check"]
