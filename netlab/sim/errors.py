"""A scenario's problems as one line each: ``file: place: what is wrong``.

pydantic reports places as tuples with its union tags in them and messages written for
programmers; the scenario's author wants ``bots[0].script[2].at: bad duration 'soon'``.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

TAG = "="
"""Union tags carry this so that error places can leave them out (see ``place``)."""


class ScenarioError(Exception):
    """A scenario that cannot run: the message names the file, the place and the problem."""


def place(loc: tuple[int | str, ...]) -> str:
    """``('bots', 0, '=bot', 'script', 2, '=say', 'at')`` -> ``bots[0].script[2].at``: union
    tags are pydantic's bookkeeping, not places in the file."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not part.startswith(TAG):
            text += f".{part}" if text else part
    return text or "(top level)"


def message(error: dict[str, Any]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required, but missing"
    if kind == "unknown_action":
        given = error["input"].get("do") if isinstance(error["input"], dict) else None
        what = f"unknown action {given!r}" if given is not None else "no action (`do:`)"
        return what + error["msg"].removeprefix("unknown action")  # "; the actions are ..."
    if kind == "string_pattern_mismatch":
        return f"{error['input']!r} is not a nickname: use letters, digits, _ and -"
    if kind == "value_error":
        return str(error["ctx"]["error"])
    if kind in ("literal_error", "enum"):
        return f"{error['input']!r} is not one of {error['ctx']['expected']}"
    return error["msg"][0].lower() + error["msg"][1:]


def validation_errors(error: ValidationError) -> list[str]:
    """pydantic's errors as ``place: what is wrong`` lines."""
    found = []
    for each in error.errors(include_url=False):
        found.append(f"{place(each['loc'])}: {message(each)}")
    return found
