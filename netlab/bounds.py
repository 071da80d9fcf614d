"""Bounds on numbers from options and scenarios: the one way to say "a finite number above 0"."""

from __future__ import annotations

import math


def positive(value: float) -> bool:
    """More than 0 and finite: NaN, which every comparison refuses, and inf are out."""
    return 0 < value < math.inf
