"""Percentiles, one way for every report: nearest rank, as load tools report them; and the
median of a few rounds."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted, non-empty samples."""
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


def percentiles(values: Sequence[float], digits: int = 2) -> dict[str, float | None]:
    """p50/p95/p99/max, rounded to ``digits``; None for each without values."""
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    ordered = sorted(values)
    return {
        "p50": round(percentile(ordered, 0.50), digits),
        "p95": round(percentile(ordered, 0.95), digits),
        "p99": round(percentile(ordered, 0.99), digits),
        "max": round(ordered[-1], digits),
    }


def median(values: Sequence[float]) -> float:
    """The middle of a few rounds' figures (the mean of the middle two for an even count),
    not a percentile of samples: ``bench --compare`` and its HTML report agree on it."""
    return statistics.median(values)
