"""The value types of the scenario format: durations, percentages, one-line texts, targets,
and the strict base model (unknown keys are errors, numbers are finite)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from netlab import net

MAX_SECONDS = 7 * 24 * 3600.0
"""The longest duration: a week (asyncio cannot sleep for ever, and nothing needs to)."""
_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m)\s*")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0}


def parse_duration(value: Any) -> float:
    """``250ms``, ``2s``, ``1.5m`` -> seconds. A bare 0 is allowed (it needs no unit); other
    bare numbers are refused, since ``after: 500`` could mean ms or s."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0:
        return 0.0
    if isinstance(value, str) and (m := _DURATION.fullmatch(value)):
        seconds = float(m.group(1)) * _UNIT[m.group(2)]
        if seconds <= MAX_SECONDS:  # also false for inf, from a number of 400 digits
            return seconds
        raise ValueError(f"duration {value!r} is too long: at most {MAX_SECONDS // 60:g}m")
    raise ValueError(
        f"bad duration {value!r}: write a number with ms, s or m, such as 250ms, 2s or 1.5m"
    )


def parse_percentage(value: Any) -> float:
    """``99.5%`` -> 0.995."""
    if isinstance(value, str) and (m := re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*%\s*", value)):
        number = float(m.group(1))
        if number <= 100:
            return number / 100
    raise ValueError(f"bad percentage {value!r}: write 0% to 100%, such as 100% or 99.5%")


def check_target(value: Any) -> Any:
    if isinstance(value, str):
        try:
            net.parse_address(value)
        except ValueError as error:  # net's words, naming the field as the file does
            raise ValueError(str(error).replace("bad address", "bad target", 1)) from None
    return value


Seconds = Annotated[float, BeforeValidator(parse_duration)]
Fraction = Annotated[float, BeforeValidator(parse_percentage)]
Text = Annotated[str, Field(min_length=1)]


class Strict(BaseModel):
    """Every model of the format: unknown keys are errors, values are not coerced from
    unrelated types (a nick of 7 is a mistake, not "7")."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )


def one_line(text: str) -> str:
    if "\n" in text or "\r" in text:
        raise ValueError("must be one line: a newline would end the message early")
    return text
