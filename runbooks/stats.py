"""Statistics from raw samples: exact percentiles, trimmed means, bootstrap intervals.

Percentiles are computed from every sample, never from histogram buckets or averages of
percentiles. The nearest-rank method is used: each percentile is a latency that was actually
observed, and p100 is the maximum (what wrk2 and HdrHistogram report).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

PERCENTILES = (50, 90, 95, 99)


def percentile(samples: Sequence[float], p: float) -> float:
    """Nearest-rank percentile: the smallest sample with at least ``p`` % of samples at or below it.

    >>> percentile([15, 20, 35, 40, 50], 40)
    20
    """
    if not samples:
        raise ValueError("no samples")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be 0..100, got {p}")
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def summary(samples: Sequence[float]) -> dict[str, float]:
    """count, mean, p50/p90/p95/p99 and max of ``samples`` (NaN when there are none)."""
    if not samples:
        return {"count": 0, "mean": math.nan, **{f"p{p}": math.nan for p in PERCENTILES}, "max": math.nan}
    return {
        "count": len(samples),
        "mean": sum(samples) / len(samples),
        **{f"p{p}": float(percentile(samples, p)) for p in PERCENTILES},
        "max": float(max(samples)),
    }


def trimmed_mean(samples: Sequence[float], trim: float = 0.2) -> float:
    """Mean after dropping ``trim`` of the samples at each end (AWS Lambda Power Tuning drops 20 %).

    The count dropped at each end is ``floor(n * trim)``, so 5 samples at 0.2 drop one each side.

    >>> trimmed_mean([1, 2, 3, 4, 100])
    3.0
    """
    if not samples:
        raise ValueError("no samples")
    if not 0 <= trim < 0.5:
        raise ValueError("trim must be in [0, 0.5)")
    ordered = sorted(samples)
    cut = math.floor(len(ordered) * trim)
    kept = ordered[cut : len(ordered) - cut]
    return sum(kept) / len(kept)


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float


def bootstrap_interval(
    samples: Sequence[float],
    statistic: Callable[[Sequence[float]], float],
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap interval of ``statistic``: resample with replacement, take the middle ``confidence``.

    Seeded, so a rerun on the same samples gives the same interval. With one sample the interval is
    that sample (there is nothing to resample).
    """
    if not samples:
        raise ValueError("no samples")
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1")
    estimate = float(statistic(samples))
    rng = random.Random(seed)  # noqa: S311  (a reproducible resampling, not a secret)
    values = list(samples)
    n = len(values)
    replicates = sorted(float(statistic([values[rng.randrange(n)] for _ in range(n)])) for _ in range(resamples))
    tail = (1 - confidence) / 2
    low = replicates[min(resamples - 1, math.floor(tail * resamples))]
    high = replicates[min(resamples - 1, math.ceil((1 - tail) * resamples) - 1)]
    return Interval(estimate, low, high)
