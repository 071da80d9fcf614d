"""Running ``netlab check`` as a user does, in a child process, for the check tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers import NETLAB, ROOT

CORPUS = Path(__file__).resolve().parent / "corpus"
PY = sys.executable


@dataclass
class Run:
    status: int
    out: str
    err: str

    def json(self) -> dict[str, Any]:
        return json.loads(self.out)

    def outcomes(self) -> dict[str, str]:
        return {case["id"]: case["outcome"] for case in self.json()["cases"]}


def netlab_check(*args: str, timeout: float = 150) -> Run:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [*NETLAB, "check", *args], capture_output=True, text=True, timeout=timeout, env=env
    )
    return Run(done.returncode, done.stdout, done.stderr)


def corpus(name: str) -> list[str]:
    """The command that starts corpus program ``name`` (``server_echo``)."""
    return [PY, str(CORPUS / f"{name}.py"), "{host}", "{port}"]


def cases_args(cases: list[str]) -> list[str]:
    return [arg for case in cases for arg in ("--cases", case)]
