"""What ``netlab check`` knows about a case and what one run of it found: plain data.

A ``Result`` turns into the JSON document's case object with exactly the contract's keys
(``id``, ``section``, ``outcome``, ``expected``, ``observed``, ``lesson``, ``duration_s``,
``log``), which is also what the table, JUnit and a later HTML report are drawn from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from netlab.protocol.client_session import Dialect

DOC = "docs/check.md"
DIALECTS = tuple(d.value for d in (Dialect.handout, Dialect.netlab, Dialect.lines))
"""The protocols a case can speak, the lab's own first."""
AUTO = "auto"
"""check's one protocol more: told by the first bytes."""
PROTOCOLS = (*DIALECTS, AUTO)


class Outcome(str, Enum):
    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"  # works, with a known weakness
    SKIP = "skip"  # not run, with a typed reason
    ERROR = "error"  # netlab's own failure, never blamed on the student


OUTCOMES = tuple(o.value for o in Outcome)


class SkipReason(str, Enum):
    """Why a case was not run: the three kinds the issue names, each with its wording."""

    PROTOCOL = "not applicable to this protocol"
    PROCESS = "needs the process (start the server with -- CMD, not --target)"
    OPTION = "needs an option"
    NOT_MET = "its condition was not met"


class Needs(str, Enum):
    """What a case needs beyond a server that speaks the protocol."""

    PROCESS = "process"
    KICK = "--kick-command"


@dataclass(frozen=True)
class Case:
    """One named check. ``run`` gets a context (cases_server.Ctx or cases_client.ClientCtx)
    and returns a Verdict, or raises Failed/Skipped."""

    id: str
    checks: str  # what it checks, in the words of the table
    lesson: str  # one line in TCP terms, shown with a fail or a warn
    run: Callable[[Any], Verdict]
    needs: tuple[Needs, ...] = ()
    protocols: tuple[str, ...] = DIALECTS

    @property
    def section(self) -> str:
        return self.id.split(".", 1)[0]

    @property
    def anchor(self) -> str:
        """The heading of this case in docs/check.md, as GitHub makes anchors of it."""
        return f"{DOC}#{self.id.replace('.', '')}"


@dataclass
class Verdict:
    """What a case function decides: an outcome with the observation in words."""

    outcome: Outcome
    observed: str
    expected: str = ""  # the case's own default when empty


class Failed(Exception):
    """A case found the program wrong: raised anywhere inside it, it becomes a fail."""


class Skipped(Exception):
    def __init__(self, reason: SkipReason, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason


@dataclass
class Result:
    id: str
    section: str
    outcome: Outcome
    expected: str
    observed: str
    lesson: str | None
    duration_s: float
    log: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "section": self.section,
            "outcome": self.outcome.value,
            "expected": self.expected,
            "observed": self.observed,
            "lesson": self.lesson,
            "duration_s": round(self.duration_s, 3),
            "log": self.log,
        }


def summary(results: list[Result]) -> dict[str, int]:
    counts = dict.fromkeys(OUTCOMES, 0)
    for result in results:
        counts[result.outcome.value] += 1
    return counts
