"""The arithmetic every figure shares: medians and ratios against a baseline from the same run."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


class NoSamplesError(ValueError):
    """A figure was asked for a median of nothing (every run failed or none was made)."""


def median(samples: Sequence[float]) -> float:
    """The median, robust to the one slow run a busy machine produces.

    >>> median([3.0, 1.0, 100.0])
    3.0
    """
    if not samples:
        raise NoSamplesError("no samples")
    return float(statistics.median(samples))


def ratio(value: float, baseline: float) -> float:
    """``value / baseline``; a non-positive baseline has no meaningful ratio."""
    if baseline <= 0:
        raise ValueError(f"baseline must be positive, got {baseline}")
    return value / baseline


def spread(samples: Sequence[float]) -> tuple[float, float]:
    """(min, max): shown beside a median so a reader sees how noisy the runs were."""
    if not samples:
        raise NoSamplesError("no samples")
    return min(samples), max(samples)
